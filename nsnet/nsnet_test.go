package nsnet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmss-emulator/vmss/internal/testutil"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"vmss-vnet-a", true},
		{"a", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"a\x00b", false},
		{strings.Repeat("x", 255), true},
		{strings.Repeat("x", 256), false},
	} {
		err := ValidName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if got := Path("vmss-x"); got != "/run/netns/vmss-x" {
		t.Errorf("Path = %q", got)
	}
}

func TestListIn(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"vmss-b", "vmss-a", "other"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	got, err := listIn(dir, "vmss-")
	if err != nil || !reflect.DeepEqual(got, []string{"vmss-a", "vmss-b"}) {
		t.Fatalf("listIn = %v, %v", got, err)
	}
	got, err = listIn(filepath.Join(dir, "missing"), "")
	if err != nil || got != nil {
		t.Fatalf("listIn(missing) = %v, %v; want nil, nil", got, err)
	}
}

func TestDialerRejects(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ network, addr, want string }{
		{"unix", "/tmp/x", "unsupported network"},
		{"ip4:icmp", "127.0.0.1", "unsupported network"},
		{"tcp", "localhost:80", "names are not resolved"},
		{"udp", "127.0.0.1", "want IP:port"},
	} {
		for _, nsPath := range []string{"", "/nonexistent/ns"} {
			// Bad input is reported before the namespace is opened.
			_, err := Dialer(nsPath)(ctx, tc.network, tc.addr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("dial %s %s in %q: %v, want %q", tc.network, tc.addr, nsPath, err, tc.want)
			}
		}
	}
}

func TestDoHere(t *testing.T) {
	want := errors.New("x")
	if err := Do("", func() error { return want }); err != want {
		t.Fatalf("Do(\"\") = %v", err)
	}
}

// testNS creates a throwaway namespace with lo up and returns its path.
func testNS(t testing.TB) string {
	t.Helper()
	testutil.RequireRoot(t)
	name := testutil.UniqueName("vmsst")
	if err := Create(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Remove(name); err != nil {
			t.Error(err)
		}
	})
	err := Do(Path(name), func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		t.Fatal(err)
	}
	return Path(name)
}

func inode(t testing.TB, h netns.NsHandle) uint64 {
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestCreateRemove(t *testing.T) {
	p := testNS(t)
	name := filepath.Base(p)
	if !Exists(name) {
		t.Fatalf("Exists(%s) = false after Create", name)
	}
	if err := Create(name); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Create = %v, want ErrExist", err)
	}
	got, err := List("vmsst")
	if err != nil || !slices.Contains(got, name) {
		t.Fatalf("List = %v, %v; want it to contain %s", got, err, name)
	}
	if err := Remove(name); err != nil {
		t.Fatal(err)
	}
	if Exists(name) {
		t.Fatal("Exists after Remove")
	}
	if err := Remove(name); err != nil {
		t.Fatalf("second Remove = %v", err)
	}

	// A plain file left by an interrupted create is replaced.
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if Exists(name) {
		t.Fatal("a plain file counts as a namespace")
	}
	if err := Create(name); err != nil {
		t.Fatalf("Create over a stale file: %v", err)
	}
	if !Exists(name) {
		t.Fatal("not created over the stale file")
	}
	// testNS's cleanup removes it.
}

// handles opens the namespace at p (closed at the end of the test) and
// returns it with the process namespace.
func handles(t testing.TB, p string) (target, home netns.NsHandle) {
	t.Helper()
	target, err := netns.GetFromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Close() })
	home, err = origin()
	if err != nil {
		t.Fatal(err)
	}
	return target, home
}

func TestDoSwitchesAndRestores(t *testing.T) {
	p := testNS(t)
	target, home := handles(t, p)
	var inside uint64
	var ifaces []string
	err := Do(p, func() error {
		h, err := netns.Get()
		if err != nil {
			return err
		}
		defer h.Close()
		inside = inode(t, h)
		links, err := net.Interfaces()
		for _, l := range links {
			ifaces = append(ifaces, l.Name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != inode(t, target) {
		t.Fatalf("fn ran in namespace inode %d, want %d", inside, inode(t, target))
	}
	if !reflect.DeepEqual(ifaces, []string{"lo"}) {
		t.Fatalf("interfaces inside = %v, want [lo]", ifaces)
	}

	// Hammer Do and dials, then check that no unlocked thread is left in
	// the namespace: fresh goroutines all see the process namespace.
	ctx := context.Background()
	l, err := ListenTCP(ctx, p, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go acceptClose(l)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = Do(p, func() error { return nil })
			if c, err := Dialer(p)(ctx, "tcp", l.Addr().String()); err == nil {
				c.Close()
			} else {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	want := inode(t, home)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := netns.Get()
			if err != nil {
				t.Error(err)
				return
			}
			defer h.Close()
			if got := inode(t, h); got != want {
				t.Errorf("a goroutine runs in namespace inode %d, want the process's %d", got, want)
			}
		}()
	}
	wg.Wait()
}

func TestDoPanic(t *testing.T) {
	p := testNS(t)
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v, want boom", v)
		}
	}()
	_ = Do(p, func() error { panic("boom") })
	t.Fatal("no panic")
}

func TestDoMissing(t *testing.T) {
	err := Do("/run/netns/vmsst-missing-namespace", func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "vmsst-missing-namespace") {
		t.Fatalf("Do on a missing namespace = %v", err)
	}
}

func acceptClose(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// echo serves one line per connection: the remote address it saw.
func echoAddr(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.WriteString(c, c.RemoteAddr().String())
		c.Close()
	}
}

func TestListenAndDialInNamespace(t *testing.T) {
	p := testNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := ListenTCP(ctx, p, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoAddr(l)
	addr := l.Addr().String()

	// The same port is free in the process namespace: a different stack.
	hl, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port %s of the namespace is also taken in the host: %v", addr, err)
	}
	hl.Close()

	read := func(d DialFunc) string {
		t.Helper()
		c, err := d(ctx, "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(Dialer(p)); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("server saw %q", got)
	}
	if got := read(DialerFrom(p, netip.MustParseAddr("127.0.0.2"))); !strings.HasPrefix(got, "127.0.0.2:") {
		t.Fatalf("DialerFrom 127.0.0.2: server saw %q", got)
	}
	ns, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(ns.Dialer(netip.MustParseAddr("127.0.0.3"))); !strings.HasPrefix(got, "127.0.0.3:") {
		t.Fatalf("Namespace.Dialer: server saw %q", got)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Dialer(netip.Addr{})(ctx, "tcp", addr); !errors.Is(err, errClosed) {
		t.Fatalf("dial after Close = %v", err)
	}
	if err := ns.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}

	// UDP: a datagram dialed from inside reaches a listener inside.
	u, err := ListenUDP(ctx, p, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	uc, err := Dialer(p)(ctx, "udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, _, err := u.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("udp read = %q, %v", buf[:n], err)
	}
}

func TestDialMissingNamespace(t *testing.T) {
	_, err := Dialer("/run/netns/vmsst-missing")(context.Background(), "tcp", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "/run/netns/vmsst-missing") {
		t.Fatalf("dial in a missing namespace = %v", err)
	}
}
