//go:build !linux

package edge

import "syscall"

// inputWaiting reports false: outside Linux there is no raw socket.
func inputWaiting(syscall.RawConn) bool { return false }
