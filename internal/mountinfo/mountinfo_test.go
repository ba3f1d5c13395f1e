package mountinfo

import (
	"reflect"
	"strings"
	"testing"
)

const sample = `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime master:7 - cgroup cgroup rw,freezer
90 27 0:4 net:[4026532281] /run/netns/my\040ns rw - nsfs nsfs rw
`

func TestParse(t *testing.T) {
	ms, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 5 {
		t.Fatalf("got %d mounts, want 5", len(ms))
	}
	want := Mount{ID: 90, ParentID: 27, Root: "net:[4026532281]", MountPoint: "/run/netns/my ns",
		Options: "rw", FSType: "nsfs", Source: "nsfs", SuperOptions: "rw"}
	if !reflect.DeepEqual(ms[4], want) {
		t.Errorf("nsfs line:\n got %+v\nwant %+v", ms[4], want)
	}
	tests := []struct {
		i                int
		shared, freezer  bool
		fstype, mountDir string
	}{
		{0, false, false, "proc", "/proc"},
		{1, true, false, "ext4", "/"},
		{2, false, false, "cgroup2", "/sys/fs/cgroup/unified"},
		{3, false, true, "cgroup", "/sys/fs/cgroup/freezer"},
	}
	for _, tc := range tests {
		m := ms[tc.i]
		if m.Shared() != tc.shared || m.HasSuperOption("freezer") != tc.freezer || m.FSType != tc.fstype || m.MountPoint != tc.mountDir {
			t.Errorf("line %d: got %+v", tc.i, m)
		}
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	for _, in := range []string{"1 2 3", "x 1 0:1 / / rw - ext4 /dev/vda rw", "1 1 0:1 / / rw shared:1 ext4"} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) succeeded, want error", in)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := map[string]string{
		`/a\040b`:   "/a b",
		`/a\011b`:   "/a\tb",
		`/a\134b`:   `/a\b`,
		`/plain`:    "/plain",
		`/trail\04`: `/trail\04`,
	}
	for in, want := range tests {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
