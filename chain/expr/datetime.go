package expr

import (
	"sync"
	"sync/atomic"
	"time"
)

// stamp is one second's $datetime, formatted once for every request of
// that second.
type stamp struct {
	unix int64
	text []byte
}

var (
	current   atomic.Pointer[stamp]
	clockOnce sync.Once
)

func makeStamp(now time.Time) *stamp {
	now = now.UTC().Truncate(time.Second)
	return &stamp{unix: now.Unix(), text: now.AppendFormat(nil, time.RFC3339)}
}

// startClock starts, on the first use of $datetime rather than at compile
// time (validation must have no side effects), the goroutine that keeps
// $datetime current. It wakes on
// each second boundary rather than on a free-running ticker, so the value is
// never more than a scheduling delay behind the wall clock. It runs for the
// life of the process: one timer a second costs less than time.Now and a
// format on every request.
func startClock() {
	clockOnce.Do(func() {
		current.Store(makeStamp(time.Now()))
		go func() {
			for {
				now := time.Now()
				time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
				current.Store(makeStamp(time.Now()))
			}
		}()
	})
}

// AppendDatetime appends the current time in RFC 3339 (ISO 8601) UTC with
// second precision, e.g. 2025-03-01T12:00:05Z. Safe for concurrent use; it
// does not allocate.
func AppendDatetime(dst []byte) []byte {
	s := current.Load()
	if s == nil {
		startClock()
		s = current.Load()
	}
	return append(dst, s.text...)
}
