package workerpool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/openhqm/openhqm/internal/upstream"
)

// defaultTimeout applies when neither the route nor the endpoint sets one.
const defaultTimeout = 30 * time.Second

// defaultLease applies when the queue is no longer configured and the
// delivery carries no lease.
const defaultLease = 60 * time.Second

// attempt is one job delivery being processed by one goroutine.
type attempt struct {
	p     *Pool
	r     *runner
	d     *backends.Delivery
	job   *backends.Job
	m     *jobMetrics
	start time.Time
	log   *slog.Logger // built on first use by the job's goroutine: most attempts log nothing
	keep  keepState    // the runner's keeper's, under its lock

	cfg     *config.Config // the generation this attempt runs on
	results Results        // the result store of that generation
	snap    *Snapshot
	pol     policy
	res     *backends.Result // the record being written; nil until the attempt is charged

	// Space an attempt fills, kept by its job goroutine from one job to the
	// next: nothing refers to it once the attempt has settled.
	rec, out backends.Result // what res and the stored outcome point to
	ans      answer
	uri      []byte
}

// logger is the attempt's logger, for the job's goroutine only.
func (a *attempt) logger() *slog.Logger {
	if a.log == nil {
		a.log = a.newLogger()
	}
	return a.log
}

func (a *attempt) newLogger() *slog.Logger {
	return a.p.log.With(keyQueue, a.r.queue, keyRoute, a.job.Route, keyEndpoint, a.job.Endpoint,
		keyRequestID, a.job.ID, keyAttempt, a.d.Attempt)
}

// handle processes one delivery with a, the job goroutine's attempt, empty
// but for its buffers; it never panics.
func (p *Pool) handle(r *runner, d *backends.Delivery, a *attempt) {
	if d == nil || d.Job == nil {
		p.m.errors.WithLabelValues(r.queue, "", "malformed").Inc()
		p.log.Error("delivery without a job; left for redelivery", keyQueue, r.queue)
		return
	}
	a.p, a.r, a.d, a.job, a.start, a.m = p, r, d, d.Job, p.now(), r.metrics(d.Job.Endpoint)
	r.active.Inc()
	defer r.active.Dec()
	defer func() { a.m.duration.Observe(p.now().Sub(a.start).Seconds()) }()
	defer func() {
		if v := recover(); v != nil {
			err := fmt.Errorf("panic: %v", v)
			p.m.errors.WithLabelValues(r.queue, a.job.Endpoint, "panic").Inc()
			a.logger().Error("job panicked; it will be delivered again", keyErr, err, "stack", string(debug.Stack()))
			a.nack(backoff(defaultRetry, d.Attempt, p.rand))
		}
	}()
	snap, done := p.opts.Current()
	defer done()
	if snap != nil {
		a.snap, a.cfg, a.results = snap, snap.Config, snap.Results
	}
	r.keeper.add(a)
	defer r.keeper.remove(a)
	a.run()
}

// letGo takes the delivery and the record back from the keeper, before the
// attempt settles the job.
func (a *attempt) letGo() { a.r.keeper.remove(a) }

// run is the job's path: charge the attempt, replay, classify, store, settle.
func (a *attempt) run() {
	ctx := a.r.jobCtx
	if a.cfg == nil {
		a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "config").Inc()
		a.logger().Error("no configuration loaded; job will be delivered again")
		a.nack(backoff(defaultRetry, a.d.Attempt, a.p.rand))
		return
	}
	a.pol = policyFor(a.cfg, a.job)
	if !a.pol.found {
		a.logger().Warn("route not in the current configuration; using the default retry policy")
	}

	// Only a redelivery can find an outcome or earlier attempts in the
	// record: a first delivery's record is the pending one its submit wrote.
	var prev *backends.Result
	if a.d.Attempt > 1 {
		var err error
		prev, err = a.results.Get(ctx, a.job.ID)
		switch {
		case err == nil:
		case errors.Is(err, backends.ErrNotFound), errors.Is(err, backends.ErrExpired):
			prev = nil
		default:
			a.storeFailed("read result", err)
			return
		}
	}
	// A redelivery of a job whose outcome is already stored (the worker died
	// between storing and acking) settles without calling the app again.
	if prev != nil && prev.Status == backends.StatusCompleted {
		a.logger().Info("job already completed; acknowledging the redelivery")
		a.ack()
		return
	}
	if prev != nil && prev.Status == backends.StatusCancelled {
		a.logger().Info("job was cancelled; acknowledging it without a replay")
		a.ack()
		return
	}
	if prev != nil && prev.Status == backends.StatusFailed {
		a.logger().Info("job already failed; dead-lettering the redelivery")
		a.res = prev
		a.deadLetter(prev.Error, &answer{status: prev.StatusCode, body: prev.Body})
		return
	}

	// Wait while the endpoint holds jobs back (its breaker is open, or the
	// app asked for a pause) before the attempt is counted: a job that
	// waits is not charged, even when the drain ends the wait.
	client := a.snap.Endpoints[a.job.Endpoint]
	var turn upstream.Turn
	if client != nil {
		var err error
		if turn, err = client.AwaitJob(ctx); err != nil {
			a.logger().Warn("drain time over while the endpoint held jobs back; the job will be delivered again", keyErr, err)
			return
		}
	}

	a.res = a.processing(prev)
	limit := attemptsOf(a.pol.retry)
	if a.res.Attempts > limit {
		// The previous attempts ended without an outcome (a worker died or
		// lost its lease): do not let a job that kills workers loop forever.
		turn.Release()
		a.fail(fmt.Sprintf("gave up: %d attempts ended without an outcome (the worker stopped or lost its lease); limit is %d",
			a.res.Attempts-1, limit), nil, false)
		return
	}
	if a.d.Attempt > 1 || !a.r.withdrawsCancelled() {
		// A redelivery is charged before the app sees it, so that a job whose
		// attempts keep ending without an outcome uses them up. On a queue
		// that cannot withdraw a cancelled job, the mark is also what a
		// cancel is decided against: a cancelled record refuses it
		// (ErrFinished), and the job is acknowledged unreplayed.
		if err := a.results.Update(ctx, a.res, a.cfg.Results.TTL); err != nil {
			turn.Release()
			a.storeFailed("mark processing", err)
			return
		}
	} else {
		// A first delivery is marked processing only if it runs long enough
		// for a client to see it: a short job goes from pending to completed.
		a.r.keeper.allowMark(a, a.p.now())
	}
	if client == nil {
		a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "endpoint_missing").Inc()
		a.fail(fmt.Sprintf("endpoint %q is not in the current configuration", a.job.Endpoint), nil, false)
		return
	}
	a.replay(ctx, client, turn)
}

// processing is the record of this attempt once charged: it is written
// when the attempt is marked processing, and the outcome is written from it.
// Attempts counts the attempts that reached this point, so an outage of the
// result store or a missing configuration does not use up a job's retries.
// Without a previous record (a first delivery) the rest comes from the job,
// as its submit wrote it.
func (a *attempt) processing(prev *backends.Result) *backends.Result {
	now := a.p.now()
	r := &a.rec
	*r = backends.Result{
		ID:          a.job.ID,
		Route:       a.job.Route,
		Principal:   a.job.Principal,
		Status:      backends.StatusProcessing,
		Attempts:    a.d.Attempt,
		SubmittedAt: a.job.CreatedAt,
		StartedAt:   now,
		UpdatedAt:   now,
	}
	if prev != nil {
		r.Attempts = prev.Attempts + 1
		if !prev.SubmittedAt.IsZero() {
			r.SubmittedAt = prev.SubmittedAt
		}
		if !prev.StartedAt.IsZero() {
			r.StartedAt = prev.StartedAt
		}
		if r.Principal == "" {
			r.Principal = prev.Principal
		}
		r.History = prev.History
	}
	return r
}

// answer is a copy of the app's response; it owns its memory.
type answer struct {
	status     int
	headers    []backends.Header
	body       []byte
	retryAfter string
}

// copyAnswer copies resp into ans.
func copyAnswer(resp *fasthttp.Response, ans *answer) *answer {
	*ans = answer{
		status:     resp.StatusCode(),
		headers:    responseHeaders(resp),
		body:       bytes.Clone(resp.Body()),
		retryAfter: string(resp.Header.Peek(fasthttp.HeaderRetryAfter)),
	}
	return ans
}

// maxInlinePause is the longest pause asked by the app (Retry-After on a
// 429 or 503) that a job waits out holding its worker slot; a longer one
// returns the job to the queue with that delay, both uncharged.
const maxInlinePause = 30 * time.Second

// replay sends the job to the endpoint on turn and settles it from the
// outcome. A failure that belongs to the endpoint rather than to the job
// is not charged: the failed half-open probe of an endpoint still down
// waits for the next turn, and a 429 or 503 with Retry-After pauses every
// job of the endpoint for the time the app asked.
func (a *attempt) replay(ctx context.Context, client *upstream.Client, turn upstream.Turn) {
	timeout := a.pol.timeout
	if timeout <= 0 {
		timeout = client.Endpoint().Timeout
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	on := a.pol.retry.On
	if on == nil {
		on = defaultRetry.On
	}
	for {
		req.Reset()
		a.uri = buildRequest(req, a.job, a.uri)
		// A job of the original's submit API has no path: it goes to the
		// endpoint's URL itself.
		err := turn.Send(req, resp, timeout, a.job.Path == "", int(a.cfg.Results.MaxBodySize))
		if ctx.Err() != nil {
			a.logger().Warn("drain time over during the request; the job will be delivered again", keyErr, err)
			return
		}
		if errors.Is(err, upstream.ErrSlotWait) {
			// The endpoint's slots stayed taken for a whole timeout and
			// nothing was sent: the job waits for its next turn, uncharged
			// (its lease is kept meanwhile).
			if turn, err = client.AwaitJob(ctx); err != nil {
				a.logger().Warn("drain time over while the job waited for a slot; the job will be delivered again", keyErr, err)
				return
			}
			continue
		}
		var ans *answer
		class := ""
		if err != nil {
			class = classifyErr(err)
		} else {
			ans = copyAnswer(resp, &a.ans)
			class = classifyStatus(ans.status)
		}
		if class == "" {
			a.complete(ans)
			return
		}
		a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, class).Inc()
		reason := describe(class, err, ans, timeout)
		retryable := retryableClass(on, class)
		if retryable && !ambiguous(class) {
			pause := time.Duration(0)
			if ans != nil && (ans.status == 429 || ans.status == 503) {
				pause = parseRetryAfter(ans.retryAfter, a.p.now())
			}
			if pause > 0 {
				client.Pause(a.p.now().Add(pause))
				a.logger().Info("the app asked for a pause; the endpoint's jobs wait, uncharged", "reason", reason, "pause", pause)
				if pause > maxInlinePause {
					a.retryUncharged(reason, ans, pause)
					return
				}
			} else if !turn.Probe() {
				a.settleFailure(reason, ans, class, retryable)
				return
			}
			// The endpoint is still down (its probe failed) or asked to
			// wait: wait for the next turn, the attempt not charged.
			if turn, err = client.AwaitJob(ctx); err != nil {
				a.logger().Warn("drain time over while the endpoint held jobs back; the job will be delivered again", keyErr, err)
				return
			}
			continue
		}
		a.settleFailure(reason, ans, class, retryable)
		return
	}
}

// settleFailure retries a failed attempt with backoff while the policy
// allows, else stores the job as failed.
func (a *attempt) settleFailure(reason string, ans *answer, class string, retryable bool) {
	if retryable && ambiguous(class) && !a.pol.idempotent && !idempotentMethod(a.job.Method) {
		retryable = false
		reason += fmt.Sprintf("; not retried: %s is not idempotent and the route does not set idempotent = true", a.job.Method)
	}
	limit := attemptsOf(a.pol.retry)
	if retryable && a.res.Attempts < limit {
		delay := backoff(a.pol.retry, a.res.Attempts, a.p.rand)
		if ans != nil {
			delay = max(delay, parseRetryAfter(ans.retryAfter, a.p.now()))
		}
		a.retry(reason, ans, delay, true)
		return
	}
	if retryable {
		reason += fmt.Sprintf(" (gave up after %d attempts)", a.res.Attempts)
	}
	a.fail(reason, ans, true)
}

// buildRequest fills req from the job, using buf (returned, perhaps grown)
// to spell the request URI. The upstream client adds the scheme, host, base
// path, credentials and static headers.
func buildRequest(req *fasthttp.Request, job *backends.Job, buf []byte) []byte {
	req.Header.SetMethod(job.Method)
	buf = append(buf[:0], job.Path...)
	if job.Path == "" {
		buf = append(buf, '/')
	}
	if job.Query != "" {
		buf = append(buf, '?')
		buf = append(buf, job.Query...)
	}
	req.SetRequestURIBytes(buf)
	for _, h := range job.Headers {
		// Jobs are stored without these; a job written by hand or by an
		// older version must not smuggle framing into the replay either.
		if httpheader.IsHopByHop(h.Name) || httpheader.Framing(h.Name) {
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	// Set, not Add: the app sees one key per job, the same on every attempt.
	req.Header.Set("Idempotency-Key", job.ID)
	req.SetBody(job.Body)
	return buf
}

// describe says in one line why an attempt failed.
func describe(class string, err error, ans *answer, timeout time.Duration) string {
	var large *upstream.TooLargeError
	switch {
	case ans != nil:
		return fmt.Sprintf("upstream answered %d %s", ans.status, http.StatusText(ans.status))
	case class == classTimeout:
		return fmt.Sprintf("no answer within %s: %v", timeout, err)
	case errors.As(err, &large) && large.Size >= 0:
		return fmt.Sprintf("the app's answer is %d bytes, over results.max_body_size (%d bytes); it was not stored", large.Size, large.Limit)
	case errors.As(err, &large):
		return fmt.Sprintf("the app's answer is over results.max_body_size (%d bytes); it was not stored", large.Limit)
	default:
		return err.Error()
	}
}

func attemptsOf(r config.Retry) int {
	if r.Attempts <= 0 {
		return defaultRetry.Attempts
	}
	return r.Attempts
}

// complete stores the app's answer verbatim, then acks: in one step when
// the queue writes the result store's records itself.
func (a *attempt) complete(ans *answer) {
	a.letGo()
	now := a.p.now()
	r := &a.out
	*r = *a.res
	r.Status = backends.StatusCompleted
	r.UpdatedAt, r.CompletedAt = now, now
	r.Error = ""
	r.StatusCode, r.Headers, r.Body = ans.status, ans.headers, ans.body
	if ra, ok := a.r.c.(ResultAcker); ok && ra.WritesResults(a.results) {
		err := ra.AckWithResult(a.r.jobCtx, a.d, r, a.cfg.Results.TTL)
		switch {
		case errors.Is(err, backends.ErrFinished):
			a.logger().Info("another delivery already finished the job; acknowledging this one", keyErr, err)
		case err == nil, errors.Is(err, backends.ErrLeaseLost):
			a.completed(ans)
			if err != nil {
				a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "ack").Inc()
				a.logger().Warn("ack failed; the stored outcome settles the redelivery", keyErr, err)
			}
		default:
			a.storeFailed("store result", err)
		}
		return
	}
	if err := a.results.Update(a.r.jobCtx, r, a.cfg.Results.TTL); err != nil {
		a.storeFailed("store result", err)
		return
	}
	a.completed(ans)
	a.ack()
}

// completed counts and logs a stored answer.
func (a *attempt) completed(ans *answer) {
	a.m.completed.Inc()
	if a.p.log.Enabled(context.Background(), slog.LevelDebug) {
		a.logger().Debug("job completed", "status", ans.status, "duration", a.p.now().Sub(a.start))
	}
}

// retryUncharged returns the job to the queue after delay without counting
// the attempt: the app asked for the pause.
func (a *attempt) retryUncharged(reason string, ans *answer, delay time.Duration) {
	a.retry(reason, ans, delay, false)
}

// retry records the failed attempt and returns the job to the queue. An
// uncharged attempt is taken off the record's count, so the next delivery
// counts the same number again.
func (a *attempt) retry(reason string, ans *answer, delay time.Duration, charged bool) {
	a.letGo()
	now := a.p.now()
	r := *a.res
	r.Status = backends.StatusPending
	r.UpdatedAt = now
	r.AddAttempt(attemptOutcome(r.Attempts, now, reason, ans, !charged))
	r.Error = fmt.Sprintf("attempt %d: %s; retrying in %s", r.Attempts, reason, delay.Round(time.Millisecond))
	if !charged {
		r.Attempts--
		r.Error = fmt.Sprintf("%s; the app asked to wait %s, not counted as an attempt", reason, delay.Round(time.Millisecond))
	}
	if err := a.results.Update(a.r.jobCtx, &r, a.cfg.Results.TTL); err != nil {
		// The nack below loses nothing; the status just lags.
		a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "results").Inc()
		a.logger().Warn("could not record the failed attempt", keyErr, err)
	}
	a.m.retried.Inc()
	a.logger().Warn("job attempt failed; retrying", "reason", reason, "delay", delay)
	a.nack(delay)
}

// attemptOutcome is the history entry of a failed attempt.
func attemptOutcome(n int, at time.Time, reason string, ans *answer, uncounted bool) backends.Attempt {
	o := backends.Attempt{Number: n, At: at, Error: reason, Uncounted: uncounted}
	if ans != nil {
		o.StatusCode = ans.status
	}
	return o
}

// fail stores the job as failed with the reason and the last answer, then
// copies it to the dead letter queue (which acks it). sent says whether
// this attempt was sent to the app, and so goes into the job's history.
func (a *attempt) fail(reason string, ans *answer, sent bool) {
	a.letGo()
	now := a.p.now()
	r := *a.res
	r.Status = backends.StatusFailed
	r.UpdatedAt, r.CompletedAt = now, now
	r.Error = reason
	if sent {
		r.AddAttempt(attemptOutcome(r.Attempts, now, reason, ans, false))
	}
	if ans != nil {
		r.StatusCode, r.Headers, r.Body = ans.status, ans.headers, ans.body
	}
	if err := a.results.Update(a.r.jobCtx, &r, a.cfg.Results.TTL); err != nil {
		a.storeFailed("store failure", err)
		return
	}
	a.res = &r
	a.m.failed.Inc()
	a.logger().Error("job failed; moved to the dead letter queue", "reason", reason)
	a.deadLetter(reason, ans)
}

func (a *attempt) deadLetter(reason string, ans *answer) {
	a.letGo()
	dl := backends.DeadLetter{Job: a.job, Reason: reason, Attempts: a.res.Attempts, At: a.p.now()}
	if ans != nil {
		dl.LastStatus, dl.LastBody = ans.status, ans.body
	}
	if err := a.r.c.DeadLetter(a.r.jobCtx, a.d, dl); err != nil {
		a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "dead_letter").Inc()
		a.logger().Error("dead-lettering failed; the job will be delivered again", keyErr, err)
	}
}

// storeFailed handles a result-store error: the job is not acked, and is
// returned to the queue with a delay so that it is tried again.
func (a *attempt) storeFailed(what string, err error) {
	a.letGo()
	if errors.Is(err, backends.ErrFinished) {
		// Another delivery of this job (after a lost lease) stored its
		// outcome first, or the job was cancelled; that outcome stands.
		a.logger().Info("the job already has an outcome (another delivery's, or a cancel); acknowledging this one")
		a.ack()
		return
	}
	a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "results").Inc()
	a.p.logs.log(a.logger(), slog.LevelError, "results:"+a.r.queue, what+" failed; the job will be delivered again", keyErr, err)
	a.nack(backoff(defaultRetry, a.d.Attempt, a.p.rand))
}

func (a *attempt) ack() {
	a.letGo()
	if err := a.r.c.Ack(a.r.jobCtx, a.d); err != nil {
		a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "ack").Inc()
		a.logger().Warn("ack failed; the stored outcome settles the redelivery", keyErr, err)
	}
}

func (a *attempt) nack(delay time.Duration) {
	a.letGo()
	if err := a.r.c.Nack(a.r.jobCtx, a.d, delay); err != nil {
		a.p.m.errors.WithLabelValues(a.r.queue, a.job.Endpoint, "ack").Inc()
		a.logger().Warn("nack failed; the job will be delivered again after its lease", keyErr, err)
	}
}

// withdrawsCancelled reports whether the runner's queue keeps cancelled
// jobs from the pool itself (see CancelWithdrawer).
func (r *runner) withdrawsCancelled() bool {
	w, ok := r.c.(CancelWithdrawer)
	return !ok || w.WithdrawsCancelled()
}
