package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/itchyny/gojq"
	"github.com/openhqm/openhqm/config"
)

// Every jq evaluation of a request runs within a budget: a route's jq
// condition, and a route's transform (all its expressions together), each
// get jqTimeout and jqEvalMemory. The expressions come from a configuration
// many people may edit and run on bodies any client may send, so neither
// may hold a handler, a core or the heap. config.CompileJQ bounds what one
// builtin call allocates and does; the context stops the evaluation between
// two calls; the meter below enforces the memory.
const (
	jqTimeout = 100 * time.Millisecond
	// jqEvalMemory bounds what the builtins of one evaluation allocate
	// (strings, arrays and objects they build); gojq's interpreter itself is
	// bounded by the time.
	jqEvalMemory = 64 << 20
	// jqSharedMemory bounds the same for all evaluations in flight in the
	// process, so that many parallel requests cannot each take
	// jqEvalMemory: 20 runaway expressions share it instead of taking
	// 20 × 64 MiB.
	jqSharedMemory = 128 << 20
	// jqReportEvery rate-limits the log line of a route's jq failures.
	jqReportEvery = 10 * time.Second
)

var errJQPanic = errors.New("the jq evaluation panicked")

// jqMemory is shared by every Server of the process: memory is the
// process's.
var jqMemory = &jqPool{limit: jqSharedMemory}

// jqPool is memory shared by the jq evaluations in flight.
type jqPool struct {
	used  atomic.Int64
	limit int64
}

// jqMeter is the config.JQMeter of one evaluation: it charges both its own
// budget and the pool, and gives back what it holds when the evaluation
// ends. It is used by one goroutine.
type jqMeter struct {
	pool *jqPool
	left int64 // of the evaluation's own budget
	held int64 // charged to the pool
}

func newJQMeter() *jqMeter {
	return &jqMeter{pool: jqMemory, left: jqEvalMemory}
}

// Charge implements config.JQMeter.
func (m *jqMeter) Charge(n int64) bool {
	if n > m.left {
		return false
	}
	if m.pool.used.Add(n) > m.pool.limit {
		m.pool.used.Add(-n)
		return false
	}
	m.left -= n
	m.held += n
	return true
}

// Left implements config.JQMeter.
func (m *jqMeter) Left() int64 {
	return max(0, min(m.left, m.pool.limit-m.pool.used.Load()))
}

// release gives the evaluation's memory back to the pool. Its values may
// still be referenced (a transform's result), but they are either small or
// about to become garbage, and the pool bounds what is being built.
func (m *jqMeter) release() {
	m.pool.used.Add(-m.held)
	m.held = 0
}

// jqFirst returns the first result of q on in; ok is false when there is
// none. An error result (a jq runtime error, halt, a guard's refusal, the
// deadline of c) is err. The rest of the evaluation never runs.
func jqFirst(c context.Context, q *config.JQ, in any, m *jqMeter) (v any, ok bool, err error) {
	defer func() {
		if p := recover(); p != nil { // a gojq bug must not take the server down
			v, ok, err = nil, false, fmt.Errorf("%w: %v", errJQPanic, p)
		}
	}()
	v, ok = q.Run(c, in, m).Next()
	if !ok {
		return nil, false, nil
	}
	if e, isErr := v.(error); isErr {
		if ve, isValue := e.(gojq.ValueError); isValue {
			// error(v) and halt_error(v) write all of v in their message,
			// which could be huge (or a value that shares its parts).
			e = &jqValueError{ve.Value()}
		}
		return nil, false, e
	}
	return v, true, nil
}

// jqValueError is the error of error(v) or halt_error(v), with a message
// of bounded size.
type jqValueError struct{ v any }

func (e *jqValueError) Error() string { return "error: " + gojq.Preview(e.v) }

// jqReason classifies a failed evaluation for metrics and logs.
func jqReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, config.ErrJQMemory):
		return "memory"
	case errors.Is(err, config.ErrJQWork):
		return "work"
	case errors.Is(err, errJQPanic):
		return "panic"
	default:
		return "error"
	}
}

// jqReport counts a route's failed jq evaluations and logs them at most
// once per jqReportEvery, with how many there were since the last line. It
// is safe for concurrent use.
type jqReport struct {
	next       atomic.Int64 // unix nanoseconds before which nothing is logged
	suppressed atomic.Int64
}

// failed records a failure of route r's jq in stage ("match" or
// "transform"). The message of err is logged only at debug level: a jq
// error quotes part of the request body.
func (j *jqReport) failed(log *slog.Logger, r *Route, stage string, err error) {
	reason := jqReason(err)
	if r.state != nil {
		r.state.metrics.jqFailed(stage, reason)
	}
	n := j.suppressed.Add(1)
	now := time.Now().UnixNano()
	next := j.next.Load()
	if log == nil || now < next || !j.next.CompareAndSwap(next, now+int64(jqReportEvery)) {
		return
	}
	j.suppressed.Add(-n)
	msg := "a jq condition failed, so the route did not match"
	if stage == "transform" {
		msg = "a transform failed"
	}
	log.Warn(msg, "route", r.Name, "reason", reason, "failures", n)
	log.Debug(msg, "route", r.Name, "err", err)
}
