//go:build !linux

package proxy

// parker is Linux's epoll set; elsewhere idle connections wait inside
// fasthttp, holding their buffers, as they would without parking.
type parker struct{}

func newParker() *parker                { return nil }
func parkFD(any) int                    { return -1 }
func (p *parker) park(*cappedConn) bool { return false }
func (p *parker) unpark(*cappedConn)    {}
func (p *parker) closeSocket(*socket)   {}
func (p *parker) stop()                 {}
