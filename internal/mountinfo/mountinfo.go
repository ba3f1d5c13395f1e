// Package mountinfo parses /proc/<pid>/mountinfo, the kernel's description of
// a mount namespace (see proc(5)). It is a pure parser: callers open the file.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of a mountinfo file.
type Mount struct {
	ID, ParentID int
	Root         string   // root of the mount inside its filesystem
	MountPoint   string   // where it is mounted, relative to the reader's root
	Options      string   // per-mount options, e.g. "rw,nosuid"
	Optional     []string // optional fields such as "shared:1" or "master:2"
	FSType       string   // e.g. "nsfs", "cgroup2", "tmpfs"
	Source       string
	SuperOptions string // per-superblock options, e.g. "rw,freezer" for a v1 cgroup
}

// Shared reports whether the mount is in a shared peer group, i.e. mounts
// made under it propagate to other mount namespaces.
func (m Mount) Shared() bool {
	for _, f := range m.Optional {
		if strings.HasPrefix(f, "shared:") {
			return true
		}
	}
	return false
}

// HasSuperOption reports whether opt is one of the comma-separated superblock
// options (for v1 cgroups, the controllers of the hierarchy).
func (m Mount) HasSuperOption(opt string) bool {
	for _, o := range strings.Split(m.SuperOptions, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// Parse reads a mountinfo file. Escaped characters in paths (\040 for a space
// and so on) are decoded.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d %q: %w", n, line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// ReadFile parses the mountinfo file at path, e.g. /proc/self/mountinfo or
// /proc/thread-self/mountinfo.
func ReadFile(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

func parseLine(line string) (Mount, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || len(f) < sep+3 {
		return Mount{}, fmt.Errorf("malformed line")
	}
	id, err := strconv.Atoi(f[0])
	if err != nil {
		return Mount{}, fmt.Errorf("mount id: %w", err)
	}
	parent, err := strconv.Atoi(f[1])
	if err != nil {
		return Mount{}, fmt.Errorf("parent id: %w", err)
	}
	m := Mount{
		ID:         id,
		ParentID:   parent,
		Root:       unescape(f[3]),
		MountPoint: unescape(f[4]),
		Options:    f[5],
		Optional:   append([]string(nil), f[6:sep]...),
		FSType:     f[sep+1],
		Source:     unescape(f[sep+2]),
	}
	if len(f) > sep+3 {
		m.SuperOptions = f[sep+3]
	}
	return m, nil
}

// unescape decodes the \ooo octal escapes the kernel uses for space, tab,
// newline and backslash in paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
