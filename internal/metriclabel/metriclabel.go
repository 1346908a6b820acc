// Package metriclabel writes the label values of metric series names, so
// that every series of one route, listener or client carries the same
// value, however the name is written.
package metriclabel

import "strings"

// Quote returns s as a label value for a series name such as
// `flexgate_requests_total{route=` + Quote(id) + `}`: between double
// quotes, with backslash, double quote and line feed escaped as the
// Prometheus text format reads them (\\, \", \n) and every other byte as it
// is. strconv.Quote is not the same: its \t or \u2028 read back as other
// text. Quote allocates only the result and is safe for concurrent use.
func Quote(s string) string {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' || c == '\n' {
			n++
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
