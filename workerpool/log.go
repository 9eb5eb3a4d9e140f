package workerpool

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Log attribute keys shared across openhqm.
const (
	keyQueue     = "queue"
	keyRoute     = "route"
	keyEndpoint  = "endpoint"
	keyRequestID = "request_id"
	keyAttempt   = "attempt"
	keyErr       = "err"
)

// throttle rate-limits repeated log lines (a backend that is down fails every
// poll): per key, at most one line per interval, with the count of lines
// suppressed since the previous one. Safe for concurrent use.
type throttle struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	last map[string]throttleState
}

type throttleState struct {
	at         time.Time
	suppressed int
}

func newThrottle(interval time.Duration, now func() time.Time) *throttle {
	return &throttle{interval: interval, now: now, last: make(map[string]throttleState)}
}

// allow reports whether a line for key may be logged now and, if so, how many
// were suppressed before it.
func (t *throttle) allow(key string) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	st, seen := t.last[key]
	if seen && now.Sub(st.at) < t.interval {
		st.suppressed++
		t.last[key] = st
		return false, 0
	}
	t.last[key] = throttleState{at: now}
	return true, st.suppressed
}

// log writes the line unless an equal key was logged within the interval.
func (t *throttle) log(l *slog.Logger, level slog.Level, key, msg string, args ...any) {
	ok, n := t.allow(key)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.Log(context.Background(), level, msg, args...)
}
