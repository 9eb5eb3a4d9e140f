package workerpool

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
)

// maxRetryAfter bounds how long an upstream Retry-After can postpone a job, so
// that a misbehaving app cannot park a job for days.
const maxRetryAfter = time.Hour

// defaultRetry is the policy of jobs whose route (or submit_api block) is no
// longer in the configuration; it matches the configuration's defaults.
var defaultRetry = config.Retry{
	Attempts: 3,
	Backoff:  "exponential",
	Initial:  time.Second,
	Max:      time.Minute,
	On:       []config.RetryOn{config.RetryConnect, config.RetryTimeout, config.Retry5xx, config.Retry429},
}

// failure classes, also used as the reason label of openhqm_worker_errors_total.
const (
	classConnect    = "connect"
	classTimeout    = "timeout"
	classReset      = "reset"
	classOverloaded = "overloaded"
	class5xx        = "5xx"
	class429        = "429"
	classUpstream   = "upstream" // any other client error (response too large, bad URL, ...)
)

// classifyStatus returns the failure class of an upstream status code, or ""
// when the answer is the job's outcome (2xx, 3xx and 4xx except 429 are the
// app's own answer and are stored verbatim).
func classifyStatus(code int) string {
	switch {
	case code == 429:
		return class429
	case code >= 500:
		return class5xx
	default:
		return ""
	}
}

// classifyErr returns the failure class of an error from upstream.Client.Do.
func classifyErr(err error) string {
	switch {
	case errors.Is(err, upstream.ErrConnect):
		return classConnect
	case errors.Is(err, upstream.ErrTimeout):
		return classTimeout
	case errors.Is(err, upstream.ErrReset):
		return classReset
	case errors.Is(err, upstream.ErrOverloaded):
		return classOverloaded
	default:
		return classUpstream
	}
}

// ambiguous reports whether a failure class means the app may have received
// and acted on the request.
func ambiguous(class string) bool {
	return class == classTimeout || class == classReset
}

// retryableClass reports whether the policy's `on` list covers the class. A
// reset is a connection failure that may come after the request was sent, so
// it is covered by either "connect" or "timeout" (and, being ambiguous, is
// still subject to the idempotency rule). Overloaded means the local endpoint
// limiter refused the request before anything was sent: it is always retried.
func retryableClass(on []config.RetryOn, class string) bool {
	switch class {
	case classConnect:
		return slices.Contains(on, config.RetryConnect)
	case classTimeout:
		return slices.Contains(on, config.RetryTimeout)
	case classReset:
		return slices.Contains(on, config.RetryConnect) || slices.Contains(on, config.RetryTimeout)
	case class5xx:
		return slices.Contains(on, config.Retry5xx)
	case class429:
		return slices.Contains(on, config.Retry429)
	case classOverloaded:
		return true
	default:
		return false
	}
}

// idempotentMethod reports whether RFC 9110 §9.2.2 calls the method idempotent.
func idempotentMethod(method string) bool {
	switch strings.ToUpper(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// backoff returns the delay before the next delivery after the given failed
// attempt (1-based). Exponential backoff uses full jitter: a uniform delay in
// [0, min(max, initial·2^(attempt-1))]. Constant backoff waits initial each
// time. rnd returns a uniform value in [0, 1).
func backoff(r config.Retry, attempt int, rnd func() float64) time.Duration {
	initial, maxDelay := r.Initial, r.Max
	if initial <= 0 {
		initial = defaultRetry.Initial
	}
	if maxDelay <= 0 {
		maxDelay = defaultRetry.Max
	}
	if maxDelay < initial {
		maxDelay = initial
	}
	if r.Backoff == "constant" {
		return initial
	}
	if attempt < 1 {
		attempt = 1
	}
	ceiling := maxDelay
	// initial·2^(attempt-1) without overflow: stop doubling once past max.
	if exp := attempt - 1; exp < 62 {
		if d := float64(initial) * math.Pow(2, float64(exp)); d < float64(maxDelay) {
			ceiling = time.Duration(d)
		}
	}
	return time.Duration(rnd() * float64(ceiling+1))
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). It returns 0 when the value is absent, malformed or in
// the past, and never more than maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := parseHTTPDate(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

func parseHTTPDate(v string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC1123, time.RFC850, time.ANSIC} {
		var t time.Time
		if t, err = time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, err
}

// policy is what the worker needs from a job's route: its retry policy,
// timeout override and idempotency flag.
type policy struct {
	retry      config.Retry
	timeout    time.Duration // 0: the endpoint's
	idempotent bool          // the route says replay is safe
	found      bool          // the route (or submit_api block) is in the configuration
}

// policyFor looks the job's route up in cfg. Jobs of the submit API
// (job.Route == "") use the submit_api block's retry policy; a route removed
// from the configuration falls back to the default policy.
func policyFor(cfg *config.Config, job *backends.Job) policy {
	if job.Route == "" {
		if cfg.SubmitAPI != nil {
			return policy{retry: cfg.SubmitAPI.Retry, found: true}
		}
		return policy{retry: defaultRetry}
	}
	for _, r := range cfg.Routes {
		if r.Name == job.Route {
			return policy{retry: r.Retry, timeout: r.Timeout, idempotent: r.Idempotent, found: true}
		}
	}
	return policy{retry: defaultRetry}
}
