//go:build linux

package edge

import (
	"net"
	"syscall"
)

// rawConnOf returns the raw socket of a TCP or Unix connection, or nil.
// With it, the reader waits for readability without a buffer and writers
// can try a write without blocking.
func rawConnOf(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// waitReadable parks until the socket has data, EOF or an error, holding
// no buffer. It honours the read deadline.
func waitReadable(rc syscall.RawConn) error {
	return rc.Read(peekReady)
}

// peekReady reports whether a read would not block: a one-byte peek
// succeeded, saw EOF or failed with anything but EAGAIN. Returning false
// parks the goroutine in the poller; the runtime calls again on readiness.
func peekReady(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		return err != syscall.EAGAIN
	}
}

func sysWrite(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }
