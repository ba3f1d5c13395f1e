package sshd

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// ptyPair is a pseudo-terminal. The master is non-blocking and in Go's
// poller, so closing it or setting a deadline interrupts a pending read
// (unlike a master whose Fd method has been called).
type ptyPair struct {
	master *os.File
	name   string // /dev/pts/N, for SSH_TTY

	mu    sync.Mutex
	slave *os.File // nil once handed to the program and closed
}

// openPTY opens a new terminal with the client's terminal modes applied.
func openPTY(modes []byte) (*ptyPair, error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sshd: open /dev/ptmx: %w", err)
	}
	s, name, err := openSlave(m)
	if err != nil {
		unix.Close(m)
		return nil, err
	}
	if t, err := unix.IoctlGetTermios(s, unix.TCGETS); err == nil {
		applyModes(t, modes)
		_ = unix.IoctlSetTermios(s, unix.TCSETS, t) // best effort, as in OpenSSH
	}
	return &ptyPair{master: os.NewFile(uintptr(m), "/dev/ptmx"), slave: os.NewFile(uintptr(s), name), name: name}, nil
}

// openSlave unlocks the master m and opens its slave side (blocking, as a
// program's stdio must be).
func openSlave(m int) (int, string, error) {
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		return -1, "", fmt.Errorf("sshd: pty number: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return -1, "", fmt.Errorf("sshd: unlock %s: %w", name, err)
	}
	// TIOCGPTPEER opens the slave through the master, whatever /dev/pts is
	// mounted here (Linux 4.13); older kernels fall back to the path.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER,
		uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno == 0 {
		return int(r), name, nil
	}
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("sshd: open %s: %w", name, err)
	}
	return s, name, nil
}

// setSize applies a window size from pty-req or window-change; the kernel
// sends SIGWINCH to the terminal's foreground process group.
func (p *ptyPair) setSize(cols, rows, width, height uint32) error {
	ws := &unix.Winsize{Col: clamp16(cols), Row: clamp16(rows), Xpixel: clamp16(width), Ypixel: clamp16(height)}
	rc, err := p.master.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	return ioErr
}

func clamp16(v uint32) uint16 {
	if v > 0xffff {
		return 0xffff
	}
	return uint16(v)
}

// closeSlave closes the parent's copy of the slave once the program has it.
func (p *ptyPair) closeSlave() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.slave != nil {
		p.slave.Close()
		p.slave = nil
	}
}

func (p *ptyPair) close() {
	p.closeSlave()
	p.master.Close()
}

// Terminal mode opcodes of RFC 4254 section 8 (and IUTF8 from RFC 8160)
// mapped onto Linux termios. Opcodes Linux lacks are ignored.
var (
	ccModes = map[byte]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF,
		6: unix.VEOL, 7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP,
		12: unix.VREPRINT, 13: unix.VWERASE, 14: unix.VLNEXT, 16: unix.VSWTC, 18: unix.VDISCARD,
	}
	iflag    = func(t *unix.Termios) *uint32 { return &t.Iflag }
	lflag    = func(t *unix.Termios) *uint32 { return &t.Lflag }
	oflag    = func(t *unix.Termios) *uint32 { return &t.Oflag }
	cflag    = func(t *unix.Termios) *uint32 { return &t.Cflag }
	flagMode = map[byte]struct {
		field func(*unix.Termios) *uint32
		bit   uint32
	}{
		30: {iflag, unix.IGNPAR}, 31: {iflag, unix.PARMRK}, 32: {iflag, unix.INPCK},
		33: {iflag, unix.ISTRIP}, 34: {iflag, unix.INLCR}, 35: {iflag, unix.IGNCR},
		36: {iflag, unix.ICRNL}, 37: {iflag, unix.IUCLC}, 38: {iflag, unix.IXON},
		39: {iflag, unix.IXANY}, 40: {iflag, unix.IXOFF}, 41: {iflag, unix.IMAXBEL},
		42: {iflag, unix.IUTF8},
		50: {lflag, unix.ISIG}, 51: {lflag, unix.ICANON}, 52: {lflag, unix.XCASE},
		53: {lflag, unix.ECHO}, 54: {lflag, unix.ECHOE}, 55: {lflag, unix.ECHOK},
		56: {lflag, unix.ECHONL}, 57: {lflag, unix.NOFLSH}, 58: {lflag, unix.TOSTOP},
		59: {lflag, unix.IEXTEN}, 60: {lflag, unix.ECHOCTL}, 61: {lflag, unix.ECHOKE},
		62: {lflag, unix.PENDIN},
		70: {oflag, unix.OPOST}, 71: {oflag, unix.OLCUC}, 72: {oflag, unix.ONLCR},
		73: {oflag, unix.OCRNL}, 74: {oflag, unix.ONOCR}, 75: {oflag, unix.ONLRET},
		90: {cflag, unix.CS7}, 91: {cflag, unix.CS8}, 92: {cflag, unix.PARENB},
		93: {cflag, unix.PARODD},
	}
)

// applyModes applies encoded terminal modes to t. Parsing stops at
// TTY_OP_END, at the first opcode of 160 or more (their argument format is
// undefined) and at a truncated entry.
func applyModes(t *unix.Termios, modes []byte) {
	for len(modes) >= 5 {
		op := modes[0]
		if op == 0 || op >= 160 {
			return
		}
		v := binary.BigEndian.Uint32(modes[1:5])
		modes = modes[5:]
		if i, ok := ccModes[op]; ok {
			t.Cc[i] = byte(v)
			continue
		}
		if f, ok := flagMode[op]; ok {
			if v != 0 {
				*f.field(t) |= f.bit
			} else {
				*f.field(t) &^= f.bit
			}
		}
	}
}
