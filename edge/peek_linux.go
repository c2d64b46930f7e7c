//go:build linux

package edge

import "syscall"

// inputWaiting reports whether the socket has bytes, EOF or an error to
// read now, without reading or waiting (it ignores the read deadline).
func inputWaiting(rc syscall.RawConn) bool {
	ready := false
	_ = rc.Control(func(fd uintptr) { ready = peekReady(fd) })
	return ready
}
