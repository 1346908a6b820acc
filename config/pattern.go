package config

import (
	"fmt"
	"strings"
)

// checkPattern reports why p is not a valid route path pattern, or "" when
// it is. The router relies on these rules: every segment is literal text or
// exactly `*`, so matching never needs backtracking.
func checkPattern(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "it must start with /"
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return fmt.Sprintf("it must not contain %q: routes match the path only, not the query or fragment", p[i])
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			return "it must not contain spaces or control characters; write a space as %20"
		}
	}
	if strings.Contains(p, ";") || strings.Contains(strings.ToUpper(p), "%3B") {
		return "it must not contain ';' or %3B: the gateway refuses request paths with ';' path parameters " +
			"(or strips them with limits pathParameters: strip), so this pattern could never match"
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "" && last:
			// A trailing slash (or the root pattern "/").
		case s == "":
			return "it has an empty segment (//); remove the extra slash"
		case s == "." || s == "..":
			return fmt.Sprintf("it has a %q segment; write the path as clients send it after normalisation", s)
		case s != "*" && strings.Contains(s, "*"):
			return fmt.Sprintf("segment %q mixes * with text; * must be a whole segment (/a/*/b or /a/*)", s)
		}
	}
	return ""
}
