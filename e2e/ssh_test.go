package e2e

// SSH into private instances with Debian's OpenSSH client: inbound NAT ports
// 50000+n → 22, file transfer, the jumpbox (ProxyJump, internal DNS, port
// forwarding), host keys, the account sessions run as, and the security
// matrix (what must be denied).

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestSSHNATPortsAndFiles: every NAT port reaches its own instance, as the
// admin user (never root), exit codes and stderr come back, a PTY session
// works, and files copied with scp (SFTP and legacy) and sftp keep their
// checksum and land in that instance only.
func TestSSHNATPortsAndFiles(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	insts := sshCreate(e, c, "web", 3)
	info := sshConnInfo(e, "web")
	if len(info) != 3 {
		t.Fatalf("connection info %v, want 3 instances", info)
	}
	var addr string
	uids := map[int]bool{}
	for _, in := range insts {
		ep := info[in.InstanceID]
		host, port := splitEP(t, ep)
		id, _ := strconv.Atoi(in.InstanceID)
		if port != strconv.Itoa(50000+id) {
			t.Errorf("instance %s is on port %s, want %d (start + instance id)", in.InstanceID, port, 50000+id)
		}
		if addr == "" {
			addr = host
		} else if host != addr {
			t.Errorf("instances on different frontends: %v", info)
		}
		if !netip.MustParsePrefix(e.PIPRange).Contains(netip.MustParseAddr(host)) {
			t.Errorf("public address %s is outside --public-ip-range %s", host, e.PIPRange)
		}
		got := c.mustSSH(ep, "hostname; id -un; echo $HOME; pwd; id -u")
		want := strings.Join([]string{in.OSProfile.ComputerName, sshUser, "/home/" + sshUser, "/home/" + sshUser}, "\n")
		i := strings.LastIndex(got, "\n")
		if i < 0 || got[:i] != want {
			t.Errorf("instance %s via %s:\n got %q\nwant %q and the uid", in.InstanceID, ep, got, want)
		} else if uid, err := strconv.Atoi(got[i+1:]); err != nil || uid < 1900000000 || uids[uid] {
			t.Errorf("instance %s: admin uid %q, want one of its own (allocated from 1900000000)", in.InstanceID, got[i+1:])
		} else {
			uids[uid] = true
		}
	}
	ep0, ep1, ep2 := info["0"], info["1"], info["2"]

	// Exit status and stderr, without and with a PTY.
	r := c.ssh(ep0, "echo out; echo err >&2; exit 7")
	if r.Code != 7 || r.Out() != "out" || strings.TrimSpace(r.Stderr) != "err" {
		t.Errorf("exit status/stderr: %s", r)
	}
	if r := c.ssh(ep0, "kill -TERM $$"); r.Code == 0 {
		t.Errorf("a command killed by a signal exited 0: %s", r)
	}
	r = c.ssh(ep0, "-tt", "tty; test -t 0 && echo terminal; exit 5")
	if r.Code != 5 || !strings.Contains(r.Stdout, "/dev/pts/") || !strings.Contains(r.Stdout, "terminal") {
		t.Errorf("ssh -tt: %s", r)
	}
	// Environment from the client (SetEnv), and keepalives answered while a
	// command runs (the client gives up after 2 unanswered probes).
	if got := c.mustSSH(ep0, "-o", "SetEnv=VMSS_E2E=ok LANG=C.UTF-8", "echo $VMSS_E2E $LANG"); got != "ok C.UTF-8" {
		t.Errorf("SetEnv: %q", got)
	}
	if got := c.mustSSH(ep0, "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "sleep 3; echo alive"); got != "alive" {
		t.Errorf("keepalives: %q", got)
	}
	// An interactive login shell fed from stdin, with a PTY.
	host0, port0 := splitEP(t, ep0)
	r = c.run("echo shell-$((6*7)); hostname; exit 3\n", "ssh", "-tt", "-p", port0, host0)
	if r.Code != 3 || !strings.Contains(r.Stdout, "shell-42") || !strings.Contains(r.Stdout, insts[0].OSProfile.ComputerName) {
		t.Errorf("interactive shell: %s", r)
	}

	// 10 MB round trips: scp (SFTP protocol), legacy scp -O, and sftp batch.
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	data := make([]byte, 10<<20)
	_, _ = rand.Read(data)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	host1, port1 := splitEP(t, ep1)
	remote := func(name string) string { return sshUser + "@" + host1 + ":" + name }
	for _, tc := range []struct{ name, flag string }{{"scp-sftp.bin", ""}, {"scp-legacy.bin", "-O"}} {
		args := []string{"-q", "-P", port1}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		if r := c.run("", "scp", append(args, big, remote(tc.name))...); r.Code != 0 {
			t.Fatalf("scp %s up: %s", tc.flag, r)
		}
		if got := strings.Fields(c.mustSSH(ep1, "sha256sum "+tc.name)); len(got) == 0 || got[0] != want {
			t.Errorf("scp %s: checksum in the instance %v, want %s", tc.flag, got, want)
		}
		back := filepath.Join(dir, tc.name+".back")
		if r := c.run("", "scp", append(args, remote(tc.name), back)...); r.Code != 0 {
			t.Fatalf("scp %s down: %s", tc.flag, r)
		}
		if b, err := os.ReadFile(back); err != nil || !bytes.Equal(b, data) {
			t.Errorf("scp %s: the file came back different (%v)", tc.flag, err)
		}
	}
	batch := filepath.Join(dir, "batch")
	sftpBack := filepath.Join(dir, "sftp.back")
	if err := os.WriteFile(batch, []byte(fmt.Sprintf("put %s sftp.bin\nmkdir sub\nrename sftp.bin sub/sftp.bin\nls -l sub\nget sub/sftp.bin %s\n",
		big, sftpBack)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.run("", "sftp", "-q", "-b", batch, "-P", port1, sshUser+"@"+host1); r.Code != 0 || !strings.Contains(r.Stdout, "10485760") {
		t.Fatalf("sftp batch: %s", r)
	}
	if b, err := os.ReadFile(sftpBack); err != nil || !bytes.Equal(b, data) {
		t.Errorf("sftp: the file came back different (%v)", err)
	}
	// Owned by the admin, in instance 1's home only.
	if got := c.mustSSH(ep1, "stat -c '%U %a' scp-sftp.bin scp-legacy.bin sub/sftp.bin"); got != strings.Repeat(sshUser+" 644\n", 2)+sshUser+" 644" {
		t.Errorf("copied files' owner and mode:\n%s", got)
	}
	for _, ep := range []string{ep0, ep2} {
		if got := c.mustSSH(ep, "ls -A ~ | grep -cE 'bin|^sub$' || true"); got != "0" {
			t.Errorf("another instance (%s) sees the copied files: %s", ep, got)
		}
	}
	for _, p := range []string{"/home/" + sshUser + "/scp-sftp.bin", "/home/" + sshUser + "/sub", "/tmp/scp-sftp.bin", "/root/scp-sftp.bin"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists on the host", p)
		}
	}
}

// TestSSHScaleOutAndIn: new instances get their NAT ports, removed ones
// lose them (the port is closed afterwards); the overprovisioned ids keep
// port = start + id.
func TestSSHScaleOutAndIn(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	e.MustCLI("create", "-n", "web", "--instance-count", "2", "--admin-username", sshUser, "--ssh-key-values", c.Pub, "-o", "none")
	check := func(want int) map[string]string {
		t.Helper()
		info := sshConnInfo(e, "web")
		insts := e.Instances("web")
		if len(info) != want || len(insts) != want {
			t.Fatalf("want %d instances: connection info %v, instances %s", want, info, ids(insts))
		}
		for _, in := range insts {
			ep := info[in.InstanceID]
			id, _ := strconv.Atoi(in.InstanceID)
			if _, port := splitEP(t, ep); port != strconv.Itoa(50000+id) {
				t.Errorf("instance %s on %s, want port %d", in.InstanceID, ep, 50000+id)
			}
			if got := c.mustSSH(ep, "hostname"); got != in.OSProfile.ComputerName {
				t.Errorf("%s reaches %s, want %s", ep, got, in.OSProfile.ComputerName)
			}
		}
		return info
	}
	before := check(2)
	e.MustCLI("scale", "-n", "web", "--new-capacity", "5", "-o", "none")
	after := check(5)
	added := 0
	for id := range after {
		if _, ok := before[id]; !ok {
			added++
		}
	}
	if added != 3 {
		t.Errorf("scale-out added %d NAT ports, want 3: before %v after %v", added, before, after)
	}
	e.MustCLI("scale", "-n", "web", "--new-capacity", "2", "-o", "none")
	final := check(2)
	for id, ep := range after {
		if _, kept := final[id]; kept {
			continue
		}
		Eventually(t, 10*time.Second, "NAT port of removed instance "+id+" closed", func() error {
			conn, err := net.DialTimeout("tcp", ep, 2*time.Second)
			if err == nil {
				conn.Close()
				return fmt.Errorf("%s still accepts connections", ep)
			}
			return nil
		})
	}
}

// TestSSHJumpbox: a jumpbox VM in the scale set's VNET answers on port 22
// of its public IP; ProxyJump reaches every instance by private IP and by
// computer name; ssh from inside the jumpbox finds instances through the
// internal DNS; an inbound NAT rule reaches the jumpbox; ssh -L forwards
// from inside the instance.
func TestSSHJumpbox(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	insts := sshCreate(e, c, "web", 3)
	e.MustCLI("vm", "create", "-n", "jumpbox", "--vnet-name", "webVNET", "--subnet", "webSubnet",
		"--public-ip-address", "jumpboxPublicIP", "--admin-username", sshUser, "--ssh-key-values", c.Pub, "-o", "none")
	d := sshVMShow(e, "jumpbox")
	if _, err := netip.ParseAddr(d.PublicIps); err != nil || d.SSHEndpoint != d.PublicIps+":22" || d.PowerState != "VM running" {
		t.Fatalf("vm show -d: %+v", d)
	}
	if a, err := netip.ParseAddr(d.PrivateIps); err != nil || !netip.MustParsePrefix("10.0.0.0/24").Contains(a) {
		t.Fatalf("jumpbox private IP %q is not in webSubnet", d.PrivateIps)
	}
	jb := d.SSHEndpoint
	if got := c.mustSSH(jb, "hostname"); got != "jumpbox" {
		t.Fatalf("jumpbox hostname %q", got)
	}
	for _, in := range insts {
		for _, target := range []string{in.PrivateIPAddress, in.OSProfile.ComputerName, strings.ToUpper(in.OSProfile.ComputerName)} {
			r := c.jump(jb, target, "hostname")
			if r.Code != 0 || r.Out() != in.OSProfile.ComputerName {
				t.Errorf("ssh -J %s %s: %s (want %s)", jb, target, r, in.OSProfile.ComputerName)
			}
		}
	}
	// Logged into the jumpbox, on by computer name (internal DNS), as a user would.
	jbHost, jbPort := splitEP(t, jb)
	if r := c.run("", "scp", "-q", "-P", jbPort, c.Key, sshUser+"@"+jbHost+":.ssh-key"); r.Code != 0 {
		t.Fatalf("copy key to the jumpbox: %s", r)
	}
	inner := "chmod 600 .ssh-key && ssh -i .ssh-key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
	for _, in := range insts {
		got := c.mustSSH(jb, inner+in.OSProfile.ComputerName+" 'hostname; hostname -I'")
		if want := in.OSProfile.ComputerName + "\n" + in.PrivateIPAddress; got != want {
			t.Errorf("from the jumpbox, ssh %s gave %q, want %q", in.OSProfile.ComputerName, got, want)
		}
	}

	// A single inbound NAT rule (frontend port → one NIC's port 22) on a
	// second load balancer (one LB cannot have both pools and rules).
	e.MustCLI("network", "lb", "create", "-n", "natlb", "--public-ip-address", "natlbpip", "-o", "none")
	e.MustCLI("network", "lb", "inbound-nat-rule", "create", "--lb-name", "natlb", "-n", "jbssh", "--frontend-port", "60022",
		"--backend-port", "22", "--nic-name", "jumpboxVMNic", "-o", "none")
	ruleEP := net.JoinHostPort(sshPublicIP(e, "show", "natlbpip"), "60022")
	if got := c.mustSSH(ruleEP, "hostname"); got != "jumpbox" {
		t.Errorf("inbound NAT rule %s reaches %q, want jumpbox", ruleEP, got)
	}

	// ssh -L: a service bound to 127.0.0.1 inside instance 0 (invisible from
	// the host) is reached through the tunnel, by 127.0.0.1 and by localhost.
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3 for the service inside the instance")
	}
	if r := c.jump(jb, insts[0].PrivateIPAddress,
		"mkdir -p /tmp/www && hostname > /tmp/www/who && cd /tmp/www && { setsid python3 -m http.server 8000 --bind 127.0.0.1 </dev/null >/dev/null 2>&1 & }"); r.Code != 0 {
		t.Fatalf("start a service in instance 0: %s", r)
	}
	for i, target := range []string{"127.0.0.1:8000", "localhost:8000"} {
		local := net.JoinHostPort(e.spareAddr(i), "18080")
		fwd, out := c.start("ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-J", sshUser+"@"+jb, "-L", local+":"+target, insts[0].PrivateIPAddress)
		Eventually(t, 20*time.Second, "ssh -L "+local+":"+target, func() error {
			body, err := HTTPGet("http://" + local + "/who")
			if err != nil {
				return fmt.Errorf("%v (ssh: %s)", err, out.String())
			}
			if strings.TrimSpace(body) != insts[0].OSProfile.ComputerName {
				return fmt.Errorf("tunnel answered %q", body)
			}
			return nil
		})
		_ = fwd.Process.Kill()
		_ = waitExit(fwd, 10*time.Second)
	}
	// The same service is not reachable from the host namespace.
	if body, err := HTTPGet("http://127.0.0.1:8000/who"); err == nil && strings.TrimSpace(body) == insts[0].OSProfile.ComputerName {
		t.Errorf("the instance's 127.0.0.1:8000 answers on the host's loopback")
	}
}

// TestSSHTwoScaleSetsAndVNETIsolation: two scale sets in two VNETs, each
// with its own public IP and the same NAT ports, both work; an instance of
// one reaches its own VNET but not the other VNET (by address or name).
func TestSSHTwoScaleSetsAndVNETIsolation(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	web := sshCreate(e, c, "web", 2)
	api := sshCreate(e, c, "api", 2, "--vnet-address-prefix", "10.1.0.0/16", "--subnet-address-prefix", "10.1.0.0/24")
	wi, ai := sshConnInfo(e, "web"), sshConnInfo(e, "api")
	wHost, _ := splitEP(t, wi["0"])
	aHost, _ := splitEP(t, ai["0"])
	if wHost == aHost {
		t.Fatalf("both scale sets got public address %s", wHost)
	}
	for set, insts := range map[string][]Instance{"web": web, "api": api} {
		info := map[string]map[string]string{"web": wi, "api": ai}[set]
		for _, in := range insts {
			if _, port := splitEP(t, info[in.InstanceID]); port != "5000"+in.InstanceID {
				t.Errorf("%s instance %s on %s", set, in.InstanceID, info[in.InstanceID])
			}
			if got := c.mustSSH(info[in.InstanceID], "hostname"); got != in.OSProfile.ComputerName {
				t.Errorf("%s: %s reaches %q, want %s", set, info[in.InstanceID], got, in.OSProfile.ComputerName)
			}
		}
	}
	// Inside web_0: its own VNET answers (the probe can succeed) ...
	probe := func(ip string) string {
		return fmt.Sprintf("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/22 && head -c 7 <&3'", ip)
	}
	if got := c.mustSSH(wi["0"], probe(web[1].PrivateIPAddress)); got != "SSH-2.0" {
		t.Fatalf("web_0 cannot reach web_1 in its own VNET: %q", got)
	}
	if got := c.mustSSH(wi["0"], "getent hosts "+web[1].OSProfile.ComputerName); !strings.HasPrefix(got, web[1].PrivateIPAddress+" ") {
		t.Errorf("web_0 resolves web_1 as %q", got)
	}
	// ... the other VNET does not, by address, by name, nor through ProxyJump.
	for _, in := range api {
		if r := c.ssh(wi["0"], probe(in.PrivateIPAddress)); r.Code == 0 || strings.Contains(r.Stdout, "SSH") {
			t.Errorf("DENY instance → other VNET: web_0 reached %s:22: %s", in.PrivateIPAddress, r)
		}
		if r := c.ssh(wi["0"], "getent hosts "+in.OSProfile.ComputerName); r.Code == 0 {
			t.Errorf("DENY: web_0 resolves the other VNET's %s: %s", in.OSProfile.ComputerName, r)
		}
		if r := c.jump(wi["0"], in.PrivateIPAddress, "hostname"); r.Code == 0 {
			t.Errorf("DENY: ssh -J through web_0 reached %s in the other VNET: %s", in.PrivateIPAddress, r)
		}
	}
}

// TestSSHSecurityMatrix: each denial of the matrix, next to the
// allowed case that shows the probe itself works.
func TestSSHSecurityMatrix(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	const pw = "S3cret!ssh-e2e"
	insts := sshCreate(e, c, "keys", 1)
	sshCreate(e, nil, "pw", 1, "--authentication-type", "password", "--admin-password", pw)
	ep := sshConnInfo(e, "keys")["0"]
	pwEP := sshConnInfo(e, "pw")["0"]

	// An unauthenticated connection is dropped after the auth timeout (10s)
	// and blocks nobody meanwhile.
	idle, err := net.DialTimeout("tcp", ep, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idleDone := make(chan error, 1)
	go func() {
		_, _ = idle.Write([]byte("SSH-2.0-idle\r\n"))
		start := time.Now()
		buf := make([]byte, 4096)
		_ = idle.SetReadDeadline(time.Now().Add(40 * time.Second))
		for {
			if _, err := idle.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					idleDone <- fmt.Errorf("unauthenticated connection still open after %s", time.Since(start))
				} else {
					idleDone <- nil
				}
				return
			}
		}
	}()

	// Instance → a host service on 127.0.0.1 and on another host loopback address.
	for _, addr := range []string{"127.0.0.1:0", net.JoinHostPort(e.spareAddr(0), "0")} {
		canary := newCanary(t, addr)
		host, _ := splitEP(t, canary.ln.Addr().String())
		url := fmt.Sprintf("http://%s:%d/", host, canary.Port())
		if body, err := HTTPGet(url); err != nil || !strings.Contains(body, canarySecret) {
			t.Fatalf("the canary does not answer on the host: %v %q", err, body)
		}
		seen := canary.accepted.Load()
		for _, cmd := range []string{
			"curl -sS --max-time 3 " + url,
			fmt.Sprintf("timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%d && cat <&3'", host, canary.Port()),
		} {
			if r := c.ssh(ep, cmd); r.Code == 0 || strings.Contains(r.Stdout, canarySecret) {
				t.Errorf("DENY instance → host service %s: %q succeeded: %s", url, cmd, r)
			}
		}
		if n := canary.accepted.Load(); n != seen {
			t.Errorf("DENY instance → host service %s: the host accepted %d connections from the instance", url, n-seen)
		}
	}

	// Host namespace → a private IP: no address, no route through anything
	// the emulator made, and no local path. The dials are bound to lo and to
	// links named like the emulator's (none should be in the host
	// namespace), so nothing leaves the host through its real interfaces.
	priv := netip.MustParseAddr(insts[0].PrivateIPAddress)
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == priv {
			t.Errorf("DENY host → private IP: %s is an address of the host namespace (%s)", priv, a.Label)
		}
	}
	if routes, err := netlink.RouteGet(priv.AsSlice()); err == nil {
		for _, r := range routes {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && strings.HasPrefix(l.Attrs().Name, "vmss") {
				t.Errorf("DENY host → private IP: the host routes %s through %s", priv, l.Attrs().Name)
			}
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	devs := []string{"lo"}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "vmss") {
			devs = append(devs, l.Attrs().Name)
		}
	}
	hostCanary := newCanary(t, "127.0.0.1:0")
	if err := dialBoundTo("lo", hostCanary.ln.Addr().String()); err != nil {
		t.Fatalf("a dial bound to lo does not work at all: %v", err)
	}
	for _, dev := range devs {
		if err := dialBoundTo(dev, netip.AddrPortFrom(priv, 22).String()); err == nil {
			t.Errorf("DENY host → private IP: %s:22 answered through host interface %s", priv, dev)
		}
	}
	// The same instance through its public NAT port works.
	if got := c.mustSSH(ep, "hostname"); got != insts[0].OSProfile.ComputerName {
		t.Fatalf("allowed path: %q", got)
	}

	// The control socket is root's only.
	if st, err := os.Stat(e.Socket); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("control socket %s: mode %v (%v), want no access for group and others", e.Socket, st.Mode().Perm(), err)
	}
	// Wrong key.
	other := newSSHClient(t)
	if r := other.ssh(ep, "hostname"); r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("DENY wrong key: %s", r)
	}
	// Password when disabled: not offered, and refused when tried.
	if m := c.authMethods(ep); m != "publickey" {
		t.Errorf("keys-only instance offers %q", m)
	}
	if r := c.passwordSSH(pw, ep, "hostname"); r.Code != 255 || r.Out() != "" {
		t.Errorf("DENY password when disabled: %s", r)
	}
	// Password when enabled: right one in, wrong one out, keys not accepted.
	if m := c.authMethods(pwEP); !strings.Contains(m, "password") {
		t.Errorf("password instance offers %q", m)
	}
	if r := c.passwordSSH(pw, pwEP, "hostname; id -un"); r.Code != 0 || r.Out() != "pw000000\n"+sshUser {
		t.Errorf("password login: %s", r)
	}
	if r := c.passwordSSH(pw+"x", pwEP, "hostname"); r.Code != 255 || r.Out() != "" {
		t.Errorf("DENY wrong password: %s", r)
	}
	if r := c.ssh(pwEP, "hostname"); r.Code != 255 {
		t.Errorf("DENY key on a password-only instance: %s", r)
	}

	select {
	case err := <-idleDone:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(45 * time.Second):
		t.Error("unauthenticated connection: no verdict")
	}
}

// TestSSHHostKeys: host keys (ed25519 and RSA) stay the same across a daemon
// crash and restart, and are new after reimage.
func TestSSHHostKeys(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	insts := sshCreate(e, c, "web", 2)
	info := sshConnInfo(e, "web")
	// A modern client records the ed25519 key; an old one that knows only
	// RSA gets an RSA key (kept in its own known_hosts).
	rsaKnown := filepath.Join(t.TempDir(), "known_hosts_rsa")
	rsaOpts := []string{"-o", "HostKeyAlgorithms=rsa-sha2-512", "-o", "UserKnownHostsFile=" + rsaKnown}
	for _, in := range insts {
		ep := info[in.InstanceID]
		c.mustSSH(ep, "true")
		host, port := splitEP(t, ep)
		// The RSA key is generated in the background after the first connection.
		Eventually(t, 30*time.Second, "RSA host key of "+ep, func() error {
			if r := c.run("", "ssh", append(rsaOpts, "-p", port, host, "true")...); r.Code != 0 {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		pattern := "[" + host + "]:" + port
		if kt := knownHostKeys(t, c.KnownHosts, pattern); len(kt) != 1 || kt[0] != "ssh-ed25519" {
			t.Errorf("known_hosts for %s has key types %v, want ssh-ed25519", ep, kt)
		}
		if kt := knownHostKeys(t, rsaKnown, pattern); len(kt) != 1 || kt[0] != "ssh-rsa" {
			t.Errorf("RSA-only known_hosts for %s has key types %v, want ssh-rsa", ep, kt)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(e.StateDir, "state", "host", "hostkeys", "*", "*"))
	private := 0
	for _, k := range keys {
		if strings.HasSuffix(k, ".pub") {
			continue
		}
		private++
		if st, err := os.Stat(k); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("host key %s: mode %v (%v), want 0600", k, st.Mode().Perm(), err)
		}
	}
	if private == 0 {
		t.Errorf("no private host keys under %s", filepath.Join(e.StateDir, "state", "host", "hostkeys"))
	}

	strict := func(ep string, opts ...string) sshResult {
		host, port := splitEP(t, ep)
		return c.run("", "ssh", append(append([]string{"-o", "StrictHostKeyChecking=yes"}, opts...), "-p", port, host, "hostname")...)
	}
	e.Kill()
	e.Serve()
	for _, in := range insts {
		ep := info[in.InstanceID]
		Eventually(t, 30*time.Second, "ssh after restart with the same known_hosts", func() error {
			if r := strict(ep); r.Code != 0 || r.Out() != in.OSProfile.ComputerName {
				return fmt.Errorf("%s: %s", ep, r)
			}
			return nil
		})
		if r := strict(ep, rsaOpts...); r.Code != 0 {
			t.Errorf("RSA host key of %s changed across the restart: %s", ep, r)
		}
	}
	e.MustCLI("reimage", "-n", "web", "--instance-ids", "0", "-o", "none")
	Eventually(t, 30*time.Second, "instance 0 serves SSH after reimage", func() error {
		if r := c.run("", "ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-p", splitPort(info["0"]), splitHost(info["0"]), "true"); r.Code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	if r := strict(info["0"]); r.Code == 0 || !strings.Contains(r.Stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Errorf("after reimage the old host key still matches: %s", r)
	}
	if r := strict(info["1"]); r.Code != 0 {
		t.Errorf("instance 1 (not reimaged) changed its host key: %s", r)
	}
}

func splitHost(ep string) string { h, _, _ := net.SplitHostPort(ep); return h }
func splitPort(ep string) string { _, p, _ := net.SplitHostPort(ep); return p }

// TestSSHJumpboxPortTaken: when port 22 of the jumpbox's public address is
// taken on the host, the jumpbox answers on 2222 (then 22222), vm show -d
// says so, and ProxyJump works through it; with every port taken it says
// why, and it recovers once a port is free.
func TestSSHJumpboxPortTaken(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	insts := sshCreate(e, c, "web", 1)
	mkJumpbox := func(name string, taken ...int) (string, []net.Listener) {
		t.Helper()
		addr := sshPublicIP(e, "create", name+"pip")
		var lns []net.Listener
		for _, p := range taken {
			ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("take %s:%d: %v", addr, p, err)
			}
			t.Cleanup(func() { ln.Close() })
			lns = append(lns, ln)
		}
		e.MustCLI("vm", "create", "-n", name, "--vnet-name", "webVNET", "--subnet", "webSubnet", "--public-ip-address", name+"pip",
			"--admin-username", sshUser, "--ssh-key-values", c.Pub, "-o", "none")
		if got := sshVMShow(e, name).PublicIps; got != addr {
			t.Fatalf("%s: public IP %s, created as %s", name, got, addr)
		}
		return addr, lns
	}
	for _, tc := range []struct {
		name  string
		taken []int
		port  string
	}{{"jb1", []int{22}, "2222"}, {"jb2", []int{22, 2222}, "22222"}} {
		addr, _ := mkJumpbox(tc.name, tc.taken...)
		ep := net.JoinHostPort(addr, tc.port)
		if d := sshVMShow(e, tc.name); d.SSHEndpoint != ep || d.SSHError != "" {
			t.Errorf("%s with ports %v taken: vm show -d %+v, want sshEndpoint %s", tc.name, tc.taken, d, ep)
		}
		if got := c.mustSSH(ep, "hostname"); got != tc.name {
			t.Errorf("%s: %s reaches %q", tc.name, ep, got)
		}
		if r := c.jump(ep, insts[0].OSProfile.ComputerName, "hostname"); r.Code != 0 || r.Out() != insts[0].OSProfile.ComputerName {
			t.Errorf("ssh -J %s: %s", ep, r)
		}
	}
	// Every candidate port taken: no endpoint, and the reason.
	addr, lns := mkJumpbox("jb3", 22, 2222, 22222)
	d := sshVMShow(e, "jb3")
	if d.SSHEndpoint != "" || !strings.Contains(d.SSHError, "22222") || !strings.Contains(d.SSHError, "in use") {
		t.Errorf("jb3 with 22, 2222 and 22222 taken: vm show -d %+v", d)
	}
	lns[0].Close()
	e.MustCLI("vm", "restart", "-n", "jb3") // any change makes the daemon apply its data plane again
	Eventually(t, 30*time.Second, "jb3 takes port 22 once it is free", func() error {
		if d := sshVMShow(e, "jb3"); d.SSHEndpoint != addr+":22" {
			return fmt.Errorf("vm show -d: %s", jsonString(d))
		}
		return nil
	})
	if got := c.mustSSH(addr+":22", "hostname"); got != "jb3" {
		t.Errorf("jb3 on port 22: %q", got)
	}
}

// TestSSHStopAndDeleteEndSessions: stopping or deleting an instance ends its
// SSH sessions (with and without a PTY) and kills what they started,
// including processes that left the session.
func TestSSHStopAndDeleteEndSessions(t *testing.T) {
	t.Parallel()
	e := Start(t, Options{})
	c := newSSHClient(t)
	sshCreate(e, c, "web", 2)
	info := sshConnInfo(e, "web")
	for _, step := range []struct {
		id   string
		verb []string
	}{
		{"0", []string{"stop", "-n", "web", "--instance-ids", "0", "-o", "none"}},
		{"1", []string{"delete-instances", "-n", "web", "--instance-ids", "1"}},
	} {
		host, port := splitEP(t, info[step.id])
		n := 4000000 + int(time.Now().UnixNano()%1000000)
		left, session, pty := strconv.Itoa(n), strconv.Itoa(n+1), strconv.Itoa(n+2)
		plain, plainOut := c.start("ssh", "-p", port, host, "setsid sleep "+left+" </dev/null >/dev/null 2>&1 & exec sleep "+session)
		tty, ttyOut := c.start("ssh", "-tt", "-p", port, host, "exec sleep "+pty)
		for _, v := range []string{left, session, pty} {
			Eventually(t, 20*time.Second, "sleep "+v+" runs in instance "+step.id, func() error {
				if len(procsWithArgs("sleep", v)) == 0 {
					return fmt.Errorf("no process 'sleep %s' (ssh: %s %s)", v, plainOut, ttyOut)
				}
				return nil
			})
		}
		e.MustCLI(step.verb...)
		for _, cmd := range []*exec.Cmd{plain, tty} {
			if err := waitExit(cmd, 20*time.Second); err != nil {
				t.Errorf("%s: session still open: %v", step.verb[0], err)
			}
		}
		for _, v := range []string{left, session, pty} {
			Eventually(t, 10*time.Second, step.verb[0]+" kills sleep "+v, func() error {
				if pids := procsWithArgs("sleep", v); len(pids) > 0 {
					return fmt.Errorf("still running: %v", pids)
				}
				return nil
			})
		}
		if r := c.ssh(info[step.id], "true"); r.Code == 0 {
			t.Errorf("after %s, instance %s still takes SSH logins", step.verb[0], step.id)
		}
	}
	// A stopped instance comes back on its port.
	e.MustCLI("start", "-n", "web", "--instance-ids", "0", "-o", "none")
	Eventually(t, 30*time.Second, "instance 0 serves SSH after start", func() error {
		if r := c.ssh(info["0"], "hostname"); r.Code != 0 {
			return fmt.Errorf("%s", r)
		}
		return nil
	})
	if got := sshConnInfo(e, "web"); len(got) != 1 || got["0"] != info["0"] {
		t.Errorf("connection info after delete of 1: %v", got)
	}
}
