// Package instance runs emulated VM instances (scale-set instances and
// standalone VMs) as sets of Linux namespaces on one host.
//
// An instance is:
//   - a named network namespace, /run/netns/<name> (visible in `ip netns
//     list`), with lo up; other packages attach eth0 to it;
//   - a UTS namespace whose host name is the Azure computer name;
//   - a mount namespace with a private /tmp and /dev/shm (tmpfs, mode 1777,
//     size-capped), its own /home (holding /home/<admin>, mode 0700, owned
//     by the admin), /root and /var/tmp, its own /etc/hostname, /etc/hosts,
//     /etc/resolv.conf, /etc/passwd and /etc/group (the host's accounts plus
//     the admin), a /sys that shows the instance's network devices and a
//     /proc of its PID namespace; the rest of the file system is the host's;
//   - a PID namespace and an IPC namespace, whose pid 1 is a small init
//     process (this program re-executed, see Exe) that reaps orphans: `ps
//     -e` inside shows the instance's processes only;
//   - an admin uid of its own, allocated from AdminUIDBase on and recorded
//     for the instance's life, so the admin of one instance can neither
//     signal nor read anything of another (processes of other instances
//     and of the host are not even visible);
//   - cgroups that hold every process started in it, so Stop and Delete
//     kill all of them, and cap its processes and memory (see package
//     cgroup for v1/v2 handling), so a fork bomb or a memory hog stays
//     inside.
//
// The network, mount and UTS namespaces are pinned by bind mounts
// (RuntimeDir/instances/<name>/{mnt,uts}, like `ip netns` does for network
// namespaces) and are built on a short-lived OS thread of the calling
// process, so creating one costs a few milliseconds and no fork; the mount
// namespace is a copy of a template (a private copy of the daemon's without
// the instances' pins, see templateMaxAge), so that cost does not grow with
// the number of instances. The PID and
// IPC namespaces need a process: the first Command starts the init (pinning
// its namespaces at RuntimeDir/instances/<name>/{pid,ipc} and recording its
// pid), which lives until Stop or Delete, across restarts of the daemon (a
// new Manager adopts it). Processes enter an instance through Command,
// which returns an exec.Cmd running /bin/sh → nsenter → the program, joining
// the cgroups before anything else runs. Stop and Delete also kill
// processes that entered an instance's namespaces some other way, found by
// a scan of /proc that concurrent calls share (deleting many instances at
// once costs a few scans of the host's processes, not one each).
//
// Typical usage:
//
//	m := &instance.Manager{Prefix: "vmss-", Logger: logger}
//	err := m.Create(ctx, instance.Spec{Name: "vmss-web-0", Hostname: "web000000",
//		AdminUser: "azureuser", PrivateIP: ip, SearchDomain: "x.internal.cloudapp.net"})
//	// attach eth0 to m.NetnsPath("vmss-web-0"), then:
//	cmd, err := m.Command(ctx, "vmss-web-0", instance.ExecRequest{Argv: []string{"bash", "-l"}})
//	ptmx, err := pty.Start(cmd)
//	...
//	err = m.Stop(ctx, "vmss-web-0")   // power off: kill every process
//	err = m.Delete(ctx, "vmss-web-0") // remove everything
//	err = m.Cleanup(ctx)              // remove everything with the prefix, state or not
//
// Requirements: root, Linux with cgroup v1 (freezer or pids; pids and
// memory for the limits) or v2, nsenter and setpriv from util-linux, mount
// and umount, mkfs.ext4 (the instances' filesystem, see HomesSize), and the
// daemon running in the host's mount namespace (no systemd PrivateTmp or
// ProtectSystem), so `ip netns` and the namespace bind mounts it makes are
// the host's. Like `ip netns add`, the first Create makes
// /run/netns a shared mount point of itself.
//
// A network namespace lives while anything refers to it: a socket the daemon
// opened in it (a listener on a thread switched into the namespace) keeps it,
// and the interfaces in it, alive after Delete until the socket is closed.
//
// Non-goals: containing root (instance root is host root and the file
// system outside the private directories is shared: extensions run as
// root, the admin has no sudo), user namespaces, CPU and I/O limits,
// persistence across host reboots (namespaces live in the kernel; Create
// rebuilds them from the state directory).
package instance
