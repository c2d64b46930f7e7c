//go:build !linux

package edge

import (
	"net"
	"syscall"
)

// rawConnOf returns nil: outside Linux every connection keeps a read buffer
// and blocking writes.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

func waitReadable(syscall.RawConn) error { return nil }

func sysWrite(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
