// Package hopbyhop names the headers that describe one connection rather
// than the message (RFC 9110 section 7.6.1): the proxy never forwards them,
// and no policy may set them.
package hopbyhop

import "strings"

// Connection lists, in its value, further headers that are hop-by-hop for
// the message it comes with.
const Connection = "Connection"

// Headers are the hop-by-hop headers besides Connection: they are removed
// whether or not a Connection header names them. Keep-Alive and
// Proxy-Connection are obsolete, and still sent. Callers must not modify
// it.
var Headers = []string{
	"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"TE", "Trailer", "Upgrade",
}

// Is reports whether name, in any case, is Connection or one of Headers.
// It is meant for load time and is safe for concurrent use.
func Is(name string) bool {
	if strings.EqualFold(name, Connection) {
		return true
	}
	for _, h := range Headers {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}
