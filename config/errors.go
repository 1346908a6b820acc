package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a config, at the place it was written. It is
// immutable and safe for concurrent use.
type Error struct {
	Pos Pos
	Msg string
}

// Error renders file:line:col: message. A YAML syntax error knows only its
// line, so the column is left out rather than printed as 0.
func (e *Error) Error() string {
	p := e.Pos.String()
	if e.Pos.Line > 0 && e.Pos.Col == 0 {
		p = fmt.Sprintf("%s:%d", e.Pos.File, e.Pos.Line)
	}
	if p == "" {
		return e.Msg
	}
	return p + ": " + e.Msg
}

// Errors is every problem found while loading, in file and line order, so
// that one run of `flexgate validate` shows them all. It is not changed after
// Load returns and is safe for concurrent reads.
type Errors struct {
	List []error
}

// Error joins the problems one per line.
func (e *Errors) Error() string {
	var b strings.Builder
	for i, err := range e.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap lets errors.As find an individual *Error.
func (e *Errors) Unwrap() []error { return e.List }

// errorList collects problems while a load runs; it is not safe for
// concurrent use.
type errorList struct {
	list []error
}

// add records a problem. Messages quote values of the config, some of them
// from $env, so a URL's password is masked in every one.
func (l *errorList) add(pos Pos, format string, args ...any) {
	l.list = append(l.list, &Error{Pos: pos, Msg: RedactURLPasswords(fmt.Sprintf(format, args...))})
}

func (l *errorList) len() int { return len(l.list) }

// err returns the collected problems as *Errors, or nil when there are none.
// Checks that run after a whole mapping is read report late, so the list
// is put in reading order: files as they were read, then line and column.
func (l *errorList) err() error {
	if len(l.list) == 0 {
		return nil
	}
	files := map[string]int{}
	for _, e := range l.list {
		if ce, ok := e.(*Error); ok {
			if _, seen := files[ce.Pos.File]; !seen {
				files[ce.Pos.File] = len(files)
			}
		}
	}
	sort.SliceStable(l.list, func(i, j int) bool {
		a, aok := l.list[i].(*Error)
		b, bok := l.list[j].(*Error)
		if !aok || !bok {
			return false
		}
		if fa, fb := files[a.Pos.File], files[b.Pos.File]; fa != fb {
			return fa < fb
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Pos.Col < b.Pos.Col
	})
	return &Errors{List: l.list}
}
