package instance

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/vmss-emulator/vmss/instance/cgroup"
	"golang.org/x/sys/unix"
)

func hashFiles(t *testing.T, paths ...string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = sha256.Sum256(b)
	}
	return out
}

func TestInstanceIsolation(t *testing.T) {
	m := newTestManager(t)
	hostFiles := []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/passwd", "/etc/group"}
	before := hashFiles(t, hostFiles...)
	hostName, _ := os.Hostname()

	a := create(t, m, testSpec(m, "a"))
	b := create(t, m, testSpec(m, "b"))

	t.Run("hostname", func(t *testing.T) {
		got := run(t, m, a.Name, ExecRequest{Argv: []string{"hostname"}})
		if got != a.Hostname || got == hostName {
			t.Errorf("hostname = %q, want %q (host is %q)", got, a.Hostname, hostName)
		}
		if got := run(t, m, a.Name, ExecRequest{Argv: []string{"cat", "/etc/hostname"}}); got != a.Hostname {
			t.Errorf("/etc/hostname = %q, want %q", got, a.Hostname)
		}
	})
	t.Run("etc files", func(t *testing.T) {
		resolv := run(t, m, a.Name, ExecRequest{Argv: []string{"cat", "/etc/resolv.conf"}})
		if resolv != "nameserver 168.63.129.16\nsearch test.internal.cloudapp.net" {
			t.Errorf("/etc/resolv.conf = %q", resolv)
		}
		hosts := run(t, m, a.Name, ExecRequest{Argv: []string{"cat", "/etc/hosts"}})
		if !strings.Contains(hosts, "127.0.1.1\thost-a") {
			t.Errorf("/etc/hosts = %q, want the instance's host name", hosts)
		}
		// `ip netns exec` (which does not enter the mount namespace) sees
		// the same resolver and hosts, from /etc/netns/<name>.
		for _, f := range []struct{ path, want string }{{"/etc/resolv.conf", resolv}, {"/etc/hosts", hosts}} {
			out, err := exec.Command("ip", "netns", "exec", a.Name, "cat", f.path).Output()
			if got := strings.TrimSpace(string(out)); err != nil || got != f.want {
				t.Errorf("ip netns exec %s cat %s = %q (%v), want the instance's %q", a.Name, f.path, got, err, f.want)
			}
		}
		uid := strconv.Itoa(a.AdminUID)
		if got := run(t, m, a.Name, ExecRequest{Argv: []string{"getent", "passwd", "azureuser"}}); !strings.HasPrefix(got, "azureuser:x:"+uid+":"+uid+"::/home/azureuser:") {
			t.Errorf("getent passwd azureuser = %q", got)
		}
	})
	t.Run("admin account", func(t *testing.T) {
		got := run(t, m, a.Name, sh(`id -un; id -u; id -g; id -G; pwd; ls -ld ~ | awk '{print $1, $3, $4}'; echo "$HOME $USER $LOGNAME $SHELL"`))
		uid := strconv.Itoa(a.AdminUID)
		want := "azureuser\n" + uid + "\n" + uid + "\n" + uid + "\n/home/azureuser\ndrwx------ azureuser azureuser\n/home/azureuser azureuser azureuser " + a.Shell
		if got != want {
			t.Errorf("account view:\n got %q\nwant %q", got, want)
		}
		// The environment is exactly the default one plus Env: the wrapper
		// chain adds nothing (no PWD of the host's working directory).
		env := strings.Split(run(t, m, a.Name, ExecRequest{Argv: []string{"env"}, Env: []string{"TERM=xterm"}}), "\n")
		slices.Sort(env)
		wantEnv := []string{"HOME=/home/azureuser", "LOGNAME=azureuser", "PATH=" + defaultPath, "SHELL=" + a.Shell, "TERM=xterm", "USER=azureuser"}
		if !slices.Equal(env, wantEnv) {
			t.Errorf("environment = %q, want %q", env, wantEnv)
		}
		if got := run(t, m, a.Name, ExecRequest{Argv: []string{"sh", "-c", "id -u; pwd; echo $HOME"}, AsRoot: true}); got != "0\n/root\n/root" {
			t.Errorf("as root: %q", got)
		}
		// The working directory is the instance's /tmp (a tmpfs), not the host's.
		inTmp := ExecRequest{Argv: []string{"sh", "-c", "pwd; stat -f -c %T .; id -un"}, Dir: "/tmp"}
		if got := run(t, m, a.Name, inTmp); got != "/tmp\ntmpfs\nazureuser" {
			t.Errorf("with Dir /tmp: %q", got)
		}
		// The same with an nsenter older than util-linux 2.38 (no --wdns).
		tools, err := m.execTools()
		if err != nil {
			t.Fatal(err)
		}
		old := &Manager{RuntimeDir: m.RuntimeDir, StateDir: m.StateDir, Prefix: m.Prefix}
		old.tools = &execTools{sh: tools.sh, nsenter: tools.nsenter, setpriv: tools.setpriv}
		if got := run(t, old, a.Name, inTmp); got != "/tmp\ntmpfs\nazureuser" {
			t.Errorf("with Dir /tmp, without --wdns: %q", got)
		}
		if got := run(t, m, a.Name, ExecRequest{Argv: []string{"sh", "-c", "echo $FOO $PATH"}, Env: []string{"FOO=bar", "PATH=/usr/bin:/bin"}}); got != "bar /usr/bin:/bin" {
			t.Errorf("env override = %q", got)
		}
	})
	t.Run("private tmp and home", func(t *testing.T) {
		marker := "vmss-test-" + strconv.Itoa(os.Getpid())
		run(t, m, a.Name, sh("echo a > /tmp/"+marker+" && echo a > ~/"+marker+" && echo a > /dev/shm/"+marker+" && echo a > /var/tmp/"+marker))
		for _, p := range []string{"/tmp/" + marker, "/dev/shm/" + marker, "/home/azureuser/" + marker, "/var/tmp/" + marker} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s written in instance a is visible on the host", p)
			}
		}
		got := run(t, m, b.Name, sh("ls /tmp/"+marker+" ~/"+marker+" /dev/shm/"+marker+" /var/tmp/"+marker+" 2>/dev/null | wc -l"))
		if got != "0" {
			t.Errorf("instance b sees %s files of instance a", got)
		}
		if got := run(t, m, a.Name, sh("cat /tmp/"+marker+" ~/"+marker)); got != "a\na" {
			t.Errorf("instance a reads %q back", got)
		}
		if got := run(t, m, a.Name, sh("stat -c %a /tmp /dev/shm /var/tmp")); got != "1777\n1777\n1777" {
			t.Errorf("modes of /tmp, /dev/shm and /var/tmp = %q", got)
		}
	})
	t.Run("network namespace", func(t *testing.T) {
		if got := run(t, m, a.Name, sh("ls /sys/class/net")); got != "lo" {
			t.Errorf("/sys/class/net = %q, want only lo", got)
		}
		if got := run(t, m, a.Name, sh("ip -o link show lo")); !strings.Contains(got, "UP") {
			t.Errorf("lo not up: %q", got)
		}
		got := run(t, m, a.Name, sh("cat /proc/sys/net/ipv4/ip_unprivileged_port_start"))
		host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		if got != "0" || strings.TrimSpace(string(host)) == "0" && got != "0" {
			t.Errorf("ip_unprivileged_port_start = %q inside (host %q)", got, host)
		}
		// The admin can listen on port 80 without sudo.
		if out, err := tryRun(m, a.Name, sh("exec python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 80)); print(\"ok\")'")); err != nil || out != "ok" {
			if _, lerr := exec.LookPath("python3"); lerr == nil {
				t.Errorf("bind :80 as admin: %v %q", err, out)
			}
		}
	})
	t.Run("processes and exe", func(t *testing.T) {
		cmd, err := m.Command(context.Background(), a.Name, ExecRequest{Argv: []string{"sleep", "1000"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids, err := m.Processes(a.Name)
			if err != nil {
				t.Fatal(err)
			}
			// The init and its sleep, nsenter (cmd.Process, the sleep's
			// parent in the host's PID namespace) and the sleep.
			if len(pids) == 4 && slices.Contains(pids, cmd.Process.Pid) && slices.Contains(pids, m.initPid(a.Name)) && countSleeps(pids) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Processes = %v, want the init %d, nsenter %d and the sleep", pids, m.initPid(a.Name), cmd.Process.Pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
		exe, err := m.Exe()
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(exe)
		if err != nil {
			t.Fatal(err)
		}
		if got := run(t, m, a.Name, sh("test -x "+exe+" && stat -c %s "+exe)); got != strconv.FormatInt(st.Size(), 10) {
			t.Errorf("Exe %s inside the instance: %q", exe, got)
		}
	})
	t.Run("host untouched", func(t *testing.T) {
		after := hashFiles(t, hostFiles...)
		for _, p := range hostFiles {
			if before[p] != after[p] {
				t.Errorf("host %s changed", p)
			}
		}
		if h, _ := os.Hostname(); h != hostName {
			t.Errorf("host name changed to %q", h)
		}
	})
}

func TestCommandPTY(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "pty"))
	cmd, err := m.Command(context.Background(), s.Name, sh(`tty; echo pid=$$; read line < /dev/tty && echo got=$line`))
	if err != nil {
		t.Fatal(err)
	}
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(ptmx)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("pty closed early")
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("timeout reading the pty")
		}
		return ""
	}
	if l := next(); !strings.HasPrefix(l, "/dev/pts/") {
		t.Errorf("tty = %q, want a /dev/pts device", l)
	}
	// The program runs in the instance's PID namespace as the only child
	// of cmd.Process (nsenter, in the host's).
	if l, want := next(), "pid="+nsPidOfChild(t, cmd.Process.Pid); l != want {
		t.Errorf("%q: want %s, the program as the child of cmd.Process (%d)", l, want, cmd.Process.Pid)
	}
	if _, err := ptmx.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	for l := next(); l != "got=hello"; l = next() {
		if l != "hello" { // the terminal's echo
			t.Fatalf("got %q, want got=hello (reading /dev/tty needs a controlling terminal)", l)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestStopAndDeleteKillEverything(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "kill"))

	// A process that entered the namespaces without the cgroup.
	strayDone := startStray(t, "--mount="+m.nsFile(s.Name, "mnt"), "--uts="+m.nsFile(s.Name, "uts"))

	cmd, pids := startTree(t, m, s.Name)
	if err := m.Stop(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("the shell exited cleanly, want killed")
	}
	waitGone(t, pids)
	select {
	case <-strayDone:
	case <-time.After(10 * time.Second):
		t.Error("Stop left the process that entered the mount namespace directly")
	}
	if got, err := m.Processes(s.Name); err != nil || len(got) != 0 {
		t.Errorf("Processes after Stop = %v, %v", got, err)
	}
	// Stopped, not deleted: commands still run.
	if got := run(t, m, s.Name, ExecRequest{Argv: []string{"hostname"}}); got != s.Hostname {
		t.Errorf("hostname after Stop = %q", got)
	}

	// A process only in the network namespace (as `ip netns exec` makes):
	// not the instance's to Stop, but it would keep the namespace alive.
	netOnlyDone := startStray(t, "--net="+m.NetnsPath(s.Name))
	cmd, pids = startTree(t, m, s.Name)
	if err := m.Stop(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, pids)
	select {
	case <-netOnlyDone:
		t.Error("Stop killed a process that was only in the network namespace")
	case <-time.After(100 * time.Millisecond):
	}

	cmd, pids = startTree(t, m, s.Name)
	if err := m.Delete(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, pids)
	select {
	case <-netOnlyDone:
	case <-time.After(10 * time.Second):
		t.Error("Delete left a process in the network namespace")
	}
	if lines := mountLines(t, s.Name); len(lines) > 0 {
		t.Errorf("mounts left after Delete: %q", lines)
	}
	for _, p := range []string{m.NetnsPath(s.Name), m.nsFile(s.Name, "mnt"), m.instDir(s.Name)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after Delete", p)
		}
	}
	if _, err := m.Processes(s.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("Processes after Delete: %v, want ErrNotFound", err)
	}
	if _, err := m.Command(context.Background(), s.Name, sh("true")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Command after Delete: %v, want ErrNotFound", err)
	}
}

// startStray starts `nsenter <nsArgs> sleep 1000` outside any instance
// cgroup; the channel receives its exit.
func startStray(t *testing.T, nsArgs ...string) <-chan error {
	t.Helper()
	cmd := exec.Command("nsenter", append(nsArgs, "sleep", "1000")...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return done
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestCreateIdempotentAndRepairs(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	s := create(t, m, testSpec(m, "rep"))
	netIno, mntIno := nsInode(t, m.NetnsPath(s.Name)), nsInode(t, m.nsFile(s.Name, "mnt"))

	t.Run("complete is a no-op", func(t *testing.T) {
		if err := m.Create(ctx, testSpec(m, "rep")); err != nil {
			t.Fatal(err)
		}
		if nsInode(t, m.nsFile(s.Name, "mnt")) != mntIno || nsInode(t, m.NetnsPath(s.Name)) != netIno {
			t.Error("a second Create replaced namespaces of a complete instance")
		}
	})
	t.Run("live update", func(t *testing.T) {
		u := testSpec(m, "rep")
		u.Hostname = "renamed"
		u.SearchDomain = "other.example"
		if err := m.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		got := run(t, m, s.Name, sh("hostname; cat /etc/hostname; grep search /etc/resolv.conf"))
		if got != "renamed\nrenamed\nsearch other.example" {
			t.Errorf("after update: %q", got)
		}
		if nsInode(t, m.nsFile(s.Name, "mnt")) != mntIno {
			t.Error("update replaced the mount namespace")
		}
		if err := m.Create(ctx, testSpec(m, "rep")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("identity change refused", func(t *testing.T) {
		u := testSpec(m, "rep")
		u.AdminUser = "other"
		if err := m.Create(ctx, u); err == nil || !strings.Contains(err.Error(), "Delete it first") {
			t.Errorf("Create with another admin = %v, want refusal", err)
		}
		if got := run(t, m, s.Name, ExecRequest{Argv: []string{"id", "-un"}}); got != "azureuser" {
			t.Errorf("admin after refused change = %q", got)
		}
	})
	t.Run("missing uts", func(t *testing.T) {
		_, pids := startTree(t, m, s.Name)
		if err := unmountAndRemove(m.nsFile(s.Name, "uts")); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Command(ctx, s.Name, sh("true")); err == nil {
			t.Error("Command on a partial instance succeeded")
		}
		if err := m.Create(ctx, testSpec(m, "rep")); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pids) // they ran in the replaced namespaces
		if got := run(t, m, s.Name, ExecRequest{Argv: []string{"hostname"}}); got != s.Hostname {
			t.Errorf("hostname after repair = %q", got)
		}
		if nsInode(t, m.NetnsPath(s.Name)) != netIno {
			t.Error("repair replaced the network namespace, which was intact")
		}
	})
	t.Run("missing netns", func(t *testing.T) {
		if err := deleteNetns(s.Name); err != nil {
			t.Fatal(err)
		}
		if err := m.Create(ctx, testSpec(m, "rep")); err != nil {
			t.Fatal(err)
		}
		if !m.namespacesComplete(s.Name) {
			t.Fatal("instance incomplete after repair")
		}
		if got := run(t, m, s.Name, sh("hostname; ls /sys/class/net")); got != s.Hostname+"\nlo" {
			t.Errorf("after netns repair: %q", got)
		}
	})
	t.Run("missing state", func(t *testing.T) {
		if err := os.RemoveAll(m.instDir(s.Name)); err != nil {
			t.Fatal(err)
		}
		if err := m.Create(ctx, testSpec(m, "rep")); err != nil {
			t.Fatal(err)
		}
		got := run(t, m, s.Name, sh("cat /etc/hostname; ls -ld ~ | awk '{print $3}'; echo x > ~/f && cat ~/f"))
		if got != s.Hostname+"\nazureuser\nx" {
			t.Errorf("after state repair: %q", got)
		}
	})
}

func TestBadInputChangesNothing(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	hostUID := -1
	passwd, _ := os.ReadFile("/etc/passwd")
	for _, l := range strings.Split(string(passwd), "\n") {
		if n, id, ok := accountEntry(l); ok && id != 0 && n != "" {
			hostUID = id
			break
		}
	}
	bad := []Spec{
		{Name: "other-x", Hostname: "h", AdminUser: "u"},
		{Name: m.Prefix + "x", Hostname: "bad_host", AdminUser: "u"},
		{Name: m.Prefix + "x", Hostname: "h", AdminUser: "root"},
		{Name: m.Prefix + "x", Hostname: "h", AdminUser: "u", AdminUID: hostUID},
	}
	for _, s := range bad {
		if err := m.Create(ctx, s); err == nil {
			t.Errorf("Create(%+v) succeeded", s)
		}
	}
	if names, err := m.List(ctx); err != nil || len(names) != 0 {
		t.Errorf("List after bad input = %v, %v", names, err)
	}
	if _, err := os.Stat(m.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bad input created %s", m.StateDir)
	}
	if _, err := m.Command(ctx, m.Prefix+"none", sh("true")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Command on a missing instance: %v, want ErrNotFound", err)
	}
	if _, err := m.Command(ctx, m.Prefix+"none", ExecRequest{}); err == nil {
		t.Error("Command with empty Argv succeeded")
	}
	if err := m.Delete(ctx, "not-prefixed"); err == nil {
		t.Error("Delete of a name without the prefix succeeded")
	}
}

func TestDeleteAndCleanupIdempotent(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	s := create(t, m, testSpec(m, "idem"))
	for i := 0; i < 2; i++ {
		if err := m.Delete(ctx, s.Name); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if err := m.Delete(ctx, m.Prefix+"never"); err != nil {
		t.Errorf("Delete of a missing instance: %v", err)
	}
	if err := m.Stop(ctx, m.Prefix+"never"); err != nil {
		t.Errorf("Stop of a missing instance: %v", err)
	}
	create(t, m, testSpec(m, "idem"))
	for i := 0; i < 2; i++ {
		if err := m.Cleanup(ctx); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
		assertNothingLeft(t, m)
	}
}

func TestCleanupWithoutState(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	a := create(t, m, testSpec(m, "a"))
	create(t, m, testSpec(m, "b"))
	_, pids := startTree(t, m, a.Name)
	// (The instances' filesystem stays mounted: its mount point is busy.)
	if err := os.RemoveAll(m.StateDir); err != nil && !errors.Is(err, unix.EBUSY) {
		t.Fatal(err)
	}
	fresh := &Manager{RuntimeDir: m.RuntimeDir, StateDir: m.StateDir, Prefix: m.Prefix, Logger: m.Logger}
	names, err := fresh.List(ctx)
	if err != nil || len(names) != 2 {
		t.Errorf("List without state = %v, %v; want both instances", names, err)
	}
	if err := fresh.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pids)
	assertNothingLeft(t, fresh)
}

func TestNamespaceCopiesDoNotPin(t *testing.T) {
	// b is created while a exists, so b's mount namespace starts as a copy
	// of the host's, with a's bind mounts; they must not keep a's network
	// namespace alive after a is deleted.
	m := newTestManager(t)
	ctx := context.Background()
	a := create(t, m, testSpec(m, "a"))
	b := create(t, m, testSpec(m, "b"))
	if got := run(t, m, b.Name, ExecRequest{Argv: []string{"sh", "-c", "grep -c nsfs /proc/self/mountinfo || true"}}); got != "0" {
		t.Errorf("instance b has %s namespace bind mounts", got)
	}
	netIno := nsInode(t, m.NetnsPath(a.Name))
	if err := m.Delete(ctx, a.Name); err != nil {
		t.Fatal(err)
	}
	// A live network namespace shows up in /proc/*/ns/net or as a mount;
	// after Delete neither may refer to a's inode.
	for _, l := range mountLines(t, "net:["+strconv.FormatUint(netIno, 10)+"]") {
		t.Errorf("a's network namespace still mounted: %s", l)
	}
	matches, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range matches {
		if l, err := os.Readlink(p); err == nil && l == "net:["+strconv.FormatUint(netIno, 10)+"]" {
			t.Errorf("%s is still in a's network namespace", p)
		}
	}
}

// TestCgroupV2 runs an instance on a cgroup2 hierarchy (on this hybrid host,
// /sys/fs/cgroup/unified; on v2 hosts the default).
func TestCgroupV2(t *testing.T) {
	skipUnlessRoot(t)
	hs, err := cgroup.All()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(hs, func(h cgroup.Hierarchy) bool { return h.Version == cgroup.V2 })
	if i < 0 {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	m := newTestManager(t)
	m.CgroupRoot = hs[i].Dir
	s := create(t, m, testSpec(m, "v2"))
	h, err := m.hierarchy()
	if err != nil || h.Version != cgroup.V2 {
		t.Fatalf("hierarchy = %+v, %v; want v2", h, err)
	}
	if !h.Exists(m.group(s.Name)) {
		t.Fatalf("no cgroup %s", h.Path(m.group(s.Name)))
	}
	if got := run(t, m, s.Name, sh("grep '^0::' /proc/self/cgroup")); got != "0::/"+m.group(s.Name) {
		t.Errorf("/proc/self/cgroup = %q, want 0::/%s", got, m.group(s.Name))
	}
	cmd, pids := startTree(t, m, s.Name)
	if err := m.Stop(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, pids)
	_, pids = startTree(t, m, s.Name)
	if err := m.Delete(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pids)
	if h.Exists(m.group(s.Name)) {
		t.Errorf("cgroup %s left after Delete", h.Path(m.group(s.Name)))
	}
}

func TestConcurrentCreate(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 16; i++ {
		wg.Go(func() { errs <- m.Create(ctx, testSpec(m, "c"+strconv.Itoa(i))) })
	}
	for i := 0; i < 4; i++ { // the same instance, four times at once
		wg.Go(func() { errs <- m.Create(ctx, testSpec(m, "same")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	names, err := m.List(ctx)
	if err != nil || len(names) != 17 {
		t.Fatalf("List = %v, %v; want 17 instances", names, err)
	}
	for _, n := range names {
		suffix := strings.TrimPrefix(n, m.Prefix)
		if got := run(t, m, n, ExecRequest{Argv: []string{"cat", "/proc/sys/kernel/hostname", "/etc/hostname"}}); got != "host-"+suffix+"\nhost-"+suffix {
			t.Errorf("%s: hostname and /etc/hostname = %q", n, got)
		}
	}
}

// TestConcurrentDeletesKillStrays deletes instances at once, each with a
// process that entered its network namespace without its cgroup (as `ip
// netns exec` does): every such process is killed (the sweeps of /proc are
// shared) and nothing of the instances is left.
func TestConcurrentDeletesKillStrays(t *testing.T) {
	m := newTestManager(t)
	ctx := context.Background()
	const n = 6
	var strays []<-chan error
	var names []string
	for i := range n {
		s := create(t, m, testSpec(m, "d"+strconv.Itoa(i)))
		names = append(names, s.Name)
		strays = append(strays, startStray(t, "--net="+m.NetnsPath(s.Name)))
	}
	// Positive control: the strays run until their instance is deleted.
	select {
	case <-strays[0]:
		t.Fatal("a stray process exited before any delete")
	case <-time.After(100 * time.Millisecond):
	}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			if err := m.Delete(ctx, name); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i, done := range strays {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("Delete left the process in the network namespace of %s", names[i])
		}
	}
	for _, name := range names {
		if _, err := os.Stat(m.NetnsPath(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after Delete", m.NetnsPath(name))
		}
		if lines := mountLines(t, name); len(lines) > 0 {
			t.Errorf("mounts of %s left after Delete: %q", name, lines)
		}
	}
	if left, err := m.List(ctx); err != nil || len(left) != 0 {
		t.Errorf("List after Delete = %v, %v; want none", left, err)
	}
}

// nsPidOfChild returns the pid, in its own PID namespace, of the only child
// of host pid parent.
func nsPidOfChild(t *testing.T, parent int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", parent, parent))
	if err != nil {
		t.Fatal(err)
	}
	kids := strings.Fields(string(b))
	if len(kids) != 1 {
		t.Fatalf("children of %d = %q, want one", parent, kids)
	}
	st, err := os.ReadFile("/proc/" + kids[0] + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "NSpid:" {
			return f[len(f)-1]
		}
	}
	t.Fatalf("no nested NSpid for pid %s: %s", kids[0], st)
	return ""
}

// A new instance in which nothing was started has nothing for Stop to kill:
// Stop returns at once and marks nothing stopped; once a command ran, Stop
// kills it as usual.
func TestStopOfNewInstance(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "idle"))
	if !m.isIdle(s.Name) {
		t.Fatal("a new instance is not idle")
	}
	if err := m.Stop(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	if fileExists(m.stoppedFile(s.Name)) {
		t.Error("Stop of an instance that never ran anything marked it stopped")
	}
	// Create again keeps the namespaces: still idle.
	create(t, m, s)
	if !m.isIdle(s.Name) {
		t.Error("Create of an existing idle instance made it not idle")
	}
	cmd, pids := startTree(t, m, s.Name)
	if m.isIdle(s.Name) {
		t.Fatal("still idle after a command started")
	}
	if err := m.Stop(context.Background(), s.Name); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitGone(t, pids)
	if !fileExists(m.stoppedFile(s.Name)) {
		t.Error("Stop after a command did not mark the instance stopped")
	}
	// A Manager that did not build it (a restarted daemon) does not know
	// it is idle.
	m2 := &Manager{RuntimeDir: m.RuntimeDir, StateDir: m.StateDir, Prefix: m.Prefix, Logger: m.Logger}
	if m2.isIdle(s.Name) {
		t.Error("a new Manager takes an instance it did not build for idle")
	}
}

// On the instances' own filesystem a new instance's spec is committed with
// a commit of that filesystem (shared by concurrent creations), and a new
// Manager reads it back.
func TestSpecCommittedOnInstancesFilesystem(t *testing.T) {
	m := newTestManager(t)
	s := create(t, m, testSpec(m, "spec"))
	m.mu.Lock()
	own := m.homesReady && m.homesOwn
	m.mu.Unlock()
	if !own {
		t.Skip("no filesystem of the instances' own here")
	}
	m.homesSync.mu.Lock()
	commits := m.homesSync.ended
	m.homesSync.mu.Unlock()
	if commits == 0 {
		t.Error("the spec was written without a commit of the instances' filesystem")
	}
	m2 := &Manager{RuntimeDir: m.RuntimeDir, StateDir: m.StateDir, Prefix: m.Prefix, Logger: m.Logger}
	got, err := m2.Lookup(s.Name)
	if err != nil || got.AdminUID != s.AdminUID || got.Hostname != s.Hostname {
		t.Errorf("spec read back = %+v, %v; want uid %d, host name %s", got, err, s.AdminUID, s.Hostname)
	}
}
