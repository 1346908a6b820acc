package proxy

import (
	"syscall"
	"unsafe"
)

// peekFD looks at the socket without consuming or waiting: MSG_PEEK leaves
// any byte where it is, MSG_DONTWAIT answers EAGAIN at once when there is
// none.
func (c *upstreamConn) peekFD(fd uintptr) {
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.buf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			c.state = idleClean
		case errno != 0, n == 0:
			// An error, or the end of the stream: the upstream closed.
			c.state = idleClosed
		default:
			c.state = idleData
		}
		return
	}
}
