package upstream

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Sentinel errors of Client.Do. Every error Do returns wraps exactly one of
// them; the wrapped detail may name internal addresses, so callers must not
// show it to clients.
var (
	// ErrConnect means the request was not sent (dial failed, connection
	// refused, no route): retrying it is safe.
	ErrConnect = errors.New("upstream: connect failed")
	// ErrTimeout means no answer arrived before the deadline. It is
	// ambiguous: the app may have acted on the request. A deadline that
	// passes while the request still waits for a concurrency slot is also
	// reported as ErrTimeout (wrapping ErrSlotWait), because the caller's
	// budget is spent either way; that one is not ambiguous.
	ErrTimeout = errors.New("upstream: timeout")
	// ErrReset means the connection broke after the request was sent, or
	// the answer could not be read (malformed, too large): ambiguous.
	ErrReset = errors.New("upstream: connection reset")
	// ErrOverloaded means max_concurrency was reached and max_pending was
	// full: the request was not sent.
	ErrOverloaded = errors.New("upstream: overloaded")
	// ErrOpen means the endpoint's circuit breaker is open: the app is
	// taken to be down and the request was not sent. The error is an
	// *OpenError, which says when to try again.
	ErrOpen = errors.New("upstream: circuit breaker open")
)

// OpenError is ErrOpen with the time until the breaker lets a probe through.
type OpenError struct{ RetryAfter time.Duration }

func (e *OpenError) Error() string { return ErrOpen.Error() }
func (e *OpenError) Unwrap() error { return ErrOpen }

func openError(retry time.Duration) error { return &OpenError{RetryAfter: retry} }

// ErrSlotWait is wrapped with ErrTimeout when the deadline passed while the
// request waited for a concurrency slot: it was never sent, so the app did
// nothing with it.
var ErrSlotWait = errors.New("deadline passed while waiting for a concurrency slot")

// classify maps a fasthttp client error onto the sentinels. It only runs on
// the error path, so it may allocate.
func classify(err error) error {
	var dialErr *fasthttp.ErrDialWithUpstream
	var opErr *net.OpError
	switch {
	case errors.Is(err, ErrTooLarge):
		return err
	case errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &dialErr),
		errors.As(err, &opErr) && opErr.Op == "dial",
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout):
		return fmt.Errorf("%w: %w", ErrConnect, err)
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return fmt.Errorf("%w: %w", ErrOverloaded, err)
	case errors.Is(err, fasthttp.ErrTimeout), isNetTimeout(err):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	default:
		return fmt.Errorf("%w: %w", ErrReset, err)
	}
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
