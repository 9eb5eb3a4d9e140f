package workerpool

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
)

func TestBackoffFullJitterBounds(t *testing.T) {
	exp := config.Retry{Backoff: "exponential", Initial: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		name    string
		retry   config.Retry
		attempt int
		ceiling time.Duration // the delay lies in [0, ceiling]
	}{
		{"first retry", exp, 1, 100 * time.Millisecond},
		{"doubles", exp, 2, 200 * time.Millisecond},
		{"doubles again", exp, 3, 400 * time.Millisecond},
		{"capped at max", exp, 5, time.Second},
		{"no overflow on huge attempts", exp, 1000, time.Second},
		{"attempt 0 treated as 1", exp, 0, 100 * time.Millisecond},
		{"defaults", config.Retry{}, 1, time.Second},
		{"max below initial", config.Retry{Initial: time.Second, Max: time.Millisecond}, 3, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(tt.retry, tt.attempt, func() float64 { return 0 }); got != 0 {
				t.Errorf("rand 0: %v, want 0 (full jitter starts at zero)", got)
			}
			top := backoff(tt.retry, tt.attempt, func() float64 { return 0.9999999999 })
			if top > tt.ceiling || top < tt.ceiling-time.Microsecond {
				t.Errorf("rand→1: %v, want just under %v", top, tt.ceiling)
			}
			mid := backoff(tt.retry, tt.attempt, func() float64 { return 0.5 })
			if d := mid - tt.ceiling/2; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("rand 0.5: %v, want about %v", mid, tt.ceiling/2)
			}
		})
	}
	t.Run("constant", func(t *testing.T) {
		c := config.Retry{Backoff: "constant", Initial: 250 * time.Millisecond, Max: time.Minute}
		for _, attempt := range []int{1, 2, 10} {
			if got := backoff(c, attempt, func() float64 { return 0.3 }); got != 250*time.Millisecond {
				t.Errorf("attempt %d: %v, want 250ms", attempt, got)
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{now.Add(30 * time.Second).Format(time.RFC850), 30 * time.Second},
		{now.Add(30 * time.Second).Format(time.ANSIC), 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	all := []config.RetryOn{config.RetryConnect, config.RetryTimeout, config.Retry5xx, config.Retry429}
	tests := []struct {
		name      string
		err       error
		status    int
		on        []config.RetryOn
		class     string
		retryable bool
	}{
		{"200 is an outcome", nil, 200, all, "", false},
		{"404 is an outcome", nil, 404, all, "", false},
		{"503", nil, 503, all, class5xx, true},
		{"503 without 5xx", nil, 503, []config.RetryOn{config.Retry429}, class5xx, false},
		{"429", nil, 429, all, class429, true},
		{"connect", fmt.Errorf("x: %w", upstream.ErrConnect), 0, all, classConnect, true},
		{"timeout", fmt.Errorf("x: %w", upstream.ErrTimeout), 0, all, classTimeout, true},
		{"timeout not listed", fmt.Errorf("x: %w", upstream.ErrTimeout), 0, []config.RetryOn{config.RetryConnect}, classTimeout, false},
		{"reset under connect", fmt.Errorf("x: %w", upstream.ErrReset), 0, []config.RetryOn{config.RetryConnect}, classReset, true},
		{"reset under 5xx only", fmt.Errorf("x: %w", upstream.ErrReset), 0, []config.RetryOn{config.Retry5xx}, classReset, false},
		{"overloaded always", fmt.Errorf("x: %w", upstream.ErrOverloaded), 0, nil, classOverloaded, true},
		{"other", fmt.Errorf("weird"), 0, all, classUpstream, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class := classifyStatus(tt.status)
			if tt.err != nil {
				class = classifyErr(tt.err)
			}
			if class != tt.class || retryableClass(tt.on, class) != tt.retryable {
				t.Errorf("class %q retryable %v; want %q %v", class, retryableClass(tt.on, class), tt.class, tt.retryable)
			}
		})
	}
	for m, want := range map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "PUT": true, "DELETE": true, "TRACE": true, "POST": false, "PATCH": false, "get": true} {
		if idempotentMethod(m) != want {
			t.Errorf("idempotentMethod(%s) != %v", m, want)
		}
	}
}

func TestPolicyFor(t *testing.T) {
	cfg := &config.Config{
		Routes:    []*config.Route{{Name: "a", Timeout: time.Second, Idempotent: true, Retry: config.Retry{Attempts: 7}}},
		SubmitAPI: &config.SubmitAPI{Retry: config.Retry{Attempts: 2}},
	}
	tests := []struct {
		route string
		cfg   *config.Config
		want  policy
	}{
		{"a", cfg, policy{retry: config.Retry{Attempts: 7}, timeout: time.Second, idempotent: true, found: true}},
		{"", cfg, policy{retry: config.Retry{Attempts: 2}, found: true}},
		{"gone", cfg, policy{retry: defaultRetry}},
		{"", &config.Config{}, policy{retry: defaultRetry}},
	}
	for _, tt := range tests {
		got := policyFor(tt.cfg, &backends.Job{Route: tt.route})
		if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(policy{})); d != "" {
			t.Errorf("route %q (-want +got):\n%s", tt.route, d)
		}
	}
}

func TestResponseHeadersDropHopByHop(t *testing.T) {
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	resp.Header.Set("Connection", "X-Secret, close")
	resp.Header.Set("X-Secret", "hop")
	resp.Header.Set("Keep-Alive", "timeout=5")
	resp.Header.Set("Transfer-Encoding", "chunked")
	resp.Header.Set("Upgrade", "h2c")
	resp.Header.Set("X-Kept", "yes")
	resp.SetBody([]byte("abc"))
	got := responseHeaders(resp)
	want := []backends.Header{{Name: "X-Kept", Value: "yes"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestThrottle(t *testing.T) {
	now := time.Unix(0, 0)
	th := newThrottle(10*time.Second, func() time.Time { return now })
	type step struct {
		ok         bool
		suppressed int
	}
	var got []step
	for _, advance := range []time.Duration{0, time.Second, time.Second, 10 * time.Second, 0} {
		now = now.Add(advance)
		ok, n := th.allow("k")
		got = append(got, step{ok, n})
	}
	want := []step{{true, 0}, {false, 0}, {false, 0}, {true, 2}, {false, 0}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(step{})); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if ok, _ := th.allow("other"); !ok {
		t.Error("a different key was throttled")
	}
}

func TestReceiveBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 6: 3200 * time.Millisecond, 7: 5 * time.Second, 100: 5 * time.Second} {
		lo, hi := receiveBackoff(n, func() float64 { return 0 }), receiveBackoff(n, func() float64 { return 0.999999 })
		if lo != want/2 || hi > want || hi < want-want/1000 {
			t.Errorf("failure %d: [%v, %v], want [%v, %v]", n, lo, hi, want/2, want)
		}
	}
}

// Building a job's request allocates nothing once its buffers have grown:
// the job goroutine keeps them from one job to the next.
func TestBuildRequestAllocatesNothing(t *testing.T) {
	job := &backends.Job{ID: "0123456789abcdef0123456789abcdef", Method: "POST", Path: "/orders/7", Query: "a=1&b=%20",
		Headers: []backends.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "X-Tenant", Value: "acme"}},
		Body:    []byte(`{"n":1}`)}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	var buf []byte
	build := func() {
		req.Reset()
		buf = buildRequest(req, job, buf)
	}
	build()
	if got := string(req.RequestURI()); got != "/orders/7?a=1&b=%20" {
		t.Errorf("request URI %q", got)
	}
	if n := testing.AllocsPerRun(100, build); n != 0 {
		t.Errorf("buildRequest allocated %.1f times per job, want 0", n)
	}
}
