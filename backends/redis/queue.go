package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
	"github.com/openhqm/openhqm/internal/batch"
)

// Options configures a Queue.
type Options struct {
	URL    string                  // redis://host:port/db; ignored when Client is set
	Client goredis.UniversalClient // shared client; the caller closes it
	Stream string                  // stream key; default "openhqm-requests"
	Group  string                  // consumer group; default "openhqm-workers"
	// DeadLetter is the dead-letter stream key; default Stream+":dlq".
	DeadLetter string
	// DeadLetterMax bounds the dead-letter stream (oldest entries trimmed); default 10000.
	DeadLetterMax int
	// MaxDepth: Enqueue answers ErrFull when stream length + delayed jobs
	// reach it; ≤ 0: unbounded. The check and the XADD are one script, so the
	// bound is exact.
	MaxDepth int
	// Lease: a delivery idle longer than this is reclaimed by another
	// consumer (XAUTOCLAIM); default 60s. Extend resets the idle time, so a
	// lease is always this long from the last Receive or Extend.
	Lease time.Duration
	// PollInterval bounds how long Receive blocks; default and maximum 1s.
	PollInterval time.Duration
	// Batch groups concurrent Enqueue calls into one round trip; the zero
	// value enables it with defaults (see BatchOptions).
	Batch BatchOptions
	// Results, when set, is the layout of the Results store that reads this
	// queue's jobs' records, on the same Redis (same URL and database): the
	// queue then also offers EnqueueWithResult (see WithResults), which
	// stores the job and its pending record in one round trip. It must equal
	// the store's Layout() (Prefix and PendingTTL of its ResultsOptions, or
	// both zero for the defaults). nil: no such method.
	Results *ResultsLayout
	// Logger receives rare operational events; default slog.Default().
	Logger *slog.Logger
}

// Queue is a durable queue on a Redis stream with a consumer group. All
// methods are safe for concurrent use.
//
// Design decisions (see also scripts.go):
//   - The group is created at id 0 with MKSTREAM. Acknowledged entries are
//     deleted (XACK and XDEL in one script), so the stream only ever holds
//     unprocessed work: a new group, or a group recreated after Redis lost it,
//     must see all of it, and there is no history to replay. The stream is never
//     trimmed with MAXLEN, which would drop unprocessed jobs; backpressure is
//     MaxDepth instead.
//   - Consumer names are the callers' (the worker's --name), stable across restarts.
//   - A lease is the idle time of a pending entry: Receive first reclaims
//     entries idle longer than Lease (XAUTOCLAIM) and only then reads new ones.
//   - Delivery.Attempt = deliveries of earlier entries of the job (field a) +
//     the delivery count Redis keeps for this entry.
//   - A delayed retry is a sorted set (Stream+":delayed", scored by due time in
//     unix ms) plus a hash of the jobs' fields (Stream+":delayed-jobs"); Receive
//     moves due jobs back into the stream with a script before reading.
//   - Enqueue returns once Redis has applied the XADD. With appendonly yes and
//     appendfsync everysec, at most the last second is lost if the Redis host
//     crashes; appendfsync always closes that gap at a throughput cost.
type Queue struct {
	rdb       goredis.UniversalClient
	ownClient bool
	opts      Options
	keys      []string // stream, delayed, delayed jobs, dead letter
	log       *slog.Logger

	closed   atomic.Bool
	enqueues *batch.Batcher[entry]      // nil when batching is disabled
	settles  *batch.Batcher[settleItem] // acks (with records, for a ResultsQueue); nil when batching is disabled
	results  *ResultsQueue              // nil unless Options.Results is set

	claimMu   sync.Mutex
	cursor    string
	lastClaim time.Time
	// nextPrepare is when Receive runs prepareScript again: at the latest
	// prepareEvery after the last run, sooner when a delayed job is due.
	nextPrepare time.Time
	nextDue     int64 // unix ms of the delayed job due first, as prepare last saw it; 0: none
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// New connects, creates the consumer group if needed and returns the queue.
// It answers an error wrapping ErrUnavailable when Redis cannot be reached.
func New(ctx context.Context, opts Options) (*Queue, error) {
	if opts.Stream == "" {
		opts.Stream = "openhqm-requests"
	}
	if opts.Group == "" {
		opts.Group = "openhqm-workers"
	}
	if opts.DeadLetter == "" {
		opts.DeadLetter = opts.Stream + ":dlq"
	}
	if opts.DeadLetterMax <= 0 {
		opts.DeadLetterMax = 10000
	}
	if opts.Lease <= 0 {
		opts.Lease = 60 * time.Second
	}
	if opts.PollInterval <= 0 || opts.PollInterval > time.Second {
		opts.PollInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	rdb, own, err := connect(opts.URL, opts.Client)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		rdb: rdb, ownClient: own, opts: opts, cursor: "0-0",
		keys: []string{opts.Stream, opts.Stream + ":delayed", opts.Stream + ":delayed-jobs", opts.DeadLetter},
		log:  opts.Logger.With("queue", opts.Stream),
	}
	if err := q.createGroup(ctx); err != nil {
		if own {
			rdb.Close()
		}
		return nil, err
	}
	if opts.Results != nil {
		l := opts.Results.withDefaults()
		q.opts.Results = &l // a copy: the caller's layout may change after New
		q.results = &ResultsQueue{Queue: q}
	}
	if !opts.Batch.Disabled {
		q.enqueues = batch.New(opts.Batch.options(), entry.size, q.enqueueBatch)
		q.settles = batch.New(opts.Batch.options(), settleItem.size, q.settleBatch)
	}
	return q, nil
}

func (q *Queue) errorf(format string, args ...any) error {
	return fmt.Errorf("redis queue %q: "+format, append([]any{q.opts.Stream}, args...)...)
}

func (q *Queue) createGroup(ctx context.Context) error {
	err := q.rdb.XGroupCreateMkStream(ctx, q.opts.Stream, q.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return q.errorf("create group %q: %w", q.opts.Group, classify(err))
	}
	return nil
}

// Enqueue stores the job and returns once Redis has applied it; ErrFull at
// MaxDepth, ErrUnavailable (wrapped) when Redis cannot be reached, ErrClosed
// after Close. When ctx ends first the job may still have been stored.
func (q *Queue) Enqueue(ctx context.Context, job *backends.Job) error {
	if q.closed.Load() {
		return q.errorf("enqueue: %w", backends.ErrClosed)
	}
	return q.enqueue(ctx, "enqueue", job.ID, entry{meta: wire.AppendFields(nil, job), body: job.Body})
}

// enqueue stores e, grouped with concurrent calls unless batching is off.
func (q *Queue) enqueue(ctx context.Context, op, id string, e entry) error {
	var err error
	if q.enqueues != nil {
		err = q.enqueues.Do(ctx, e)
	} else {
		err = batch.Send(ctx, q.enqueueBatch, e)
	}
	if err != nil {
		return q.errorf("%s %s: %w", op, id, err)
	}
	return nil
}

// enqueueBatch stores reqs with one script call and sets each request's error.
func (q *Queue) enqueueBatch(ctx context.Context, reqs []*batch.Call[entry]) {
	var ttl int64
	if q.opts.Results != nil {
		ttl = q.opts.Results.PendingTTL.Milliseconds()
	}
	args := make([]any, 2, 2+3*len(reqs))
	args[0], args[1] = q.opts.MaxDepth, ttl
	keys := q.keys[:2:2] // appending copies: q.keys is shared
	for _, r := range reqs {
		args = append(args, r.Item.meta, r.Item.body, r.Item.rval)
		if r.Item.rkey != "" {
			keys = append(keys, r.Item.rkey)
		}
	}
	res, err := enqueueScript.Run(ctx, q.rdb, keys, args...).Slice()
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("enqueue script answered %d results for %d jobs", len(res), len(reqs))
	}
	for i, r := range reqs {
		switch {
		case err != nil:
			r.Err = classify(err)
		case res[i] == int64(0):
			r.Err = backends.ErrFull
		}
	}
}

// receipt is what a Delivery needs to prove it still holds its entry.
func receipt(id string, count int64, consumer string) string {
	return id + "/" + strconv.FormatInt(count, 10) + "/" + consumer
}

func parseReceipt(r string) (id, count, consumer string, err error) {
	id, rest, ok1 := strings.Cut(r, "/")
	count, consumer, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 {
		return "", "", "", fmt.Errorf("malformed receipt %q", r)
	}
	return id, count, consumer, nil
}

// Receive moves due delayed jobs back, reclaims up to max entries whose lease
// expired, and otherwise reads up to max new entries, blocking up to the poll
// interval (≤ 1s) or until the next delayed job is due.
func (q *Queue) Receive(ctx context.Context, consumer string, limit int) ([]*backends.Delivery, error) {
	if q.closed.Load() {
		return nil, q.errorf("receive: %w", backends.ErrClosed)
	}
	if limit <= 0 {
		limit = 1
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	ds, nextDue, err := q.prepare(ctx, consumer, limit)
	if err != nil {
		return nil, err
	}
	if len(ds) > 0 {
		return q.withhold(ctx, ds)
	}
	block := q.opts.PollInterval
	if nextDue > 0 {
		block = min(block, time.Until(time.UnixMilli(nextDue)))
	}
	if dl, ok := ctx.Deadline(); ok {
		block = min(block, time.Until(dl))
	}
	block = max(block, time.Millisecond)
	res, err := q.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: q.opts.Group, Consumer: consumer, Streams: []string{q.opts.Stream, ">"},
		Count: int64(limit), Block: block,
	}).Result()
	if isNoGroup(err) {
		q.log.Warn("consumer group missing; recreating it", "err", err)
		return nil, q.createGroup(ctx)
	}
	if errors.Is(err, goredis.Nil) || (err != nil && ctx.Err() != nil) {
		return nil, nil
	}
	if err != nil && q.closed.Load() {
		return nil, q.errorf("receive: %w", backends.ErrClosed)
	}
	if err != nil {
		return nil, q.errorf("receive: %w", classify(err))
	}
	leaseUntil := time.Now().Add(q.opts.Lease)
	for _, s := range res {
		for _, m := range s.Messages {
			if d := q.delivery(ctx, m.ID, m.Values, 1, consumer, leaseUntil); d != nil {
				ds = append(ds, d)
			}
		}
	}
	return q.withhold(ctx, ds) // cancelled jobs are never handed out
}

// delivery decodes an entry; an entry that cannot be decoded is moved to the
// dead-letter stream, since no worker could ever process it.
func (q *Queue) delivery(ctx context.Context, id string, values map[string]any, count int64, consumer string, leaseUntil time.Time) *backends.Delivery {
	job, before, err := decodeEntry(values)
	d := &backends.Delivery{Attempt: before + int(count), Receipt: receipt(id, count, consumer), LeaseUntil: leaseUntil}
	if err != nil {
		q.log.Error("dropping undecodable entry to the dead-letter stream", "entry", id, "err", err)
		d.Job = &backends.Job{ID: id}
		if err := q.DeadLetter(ctx, d, backends.DeadLetter{Reason: "undecodable entry: " + err.Error()}); err != nil {
			q.log.Error("dead-letter undecodable entry", "entry", id, "err", err)
		}
		return nil
	}
	d.Job = job
	return d
}

// prepareEvery is how often a Receive that keeps finding jobs also moves
// due delayed jobs back into the stream: a delayed job is a lower bound on
// the wait, and checking before every read would cost a script call per
// batch of jobs.
const prepareEvery = 100 * time.Millisecond

// prepare runs prepareScript when it is due: it moves due delayed jobs and,
// at most every Lease/4, reclaims expired leases for consumer. It runs at
// least every prepareEvery, and at once when the delayed job it last saw
// first is due. It answers the reclaimed deliveries and when the next
// delayed job is due (unix ms, 0: none known).
func (q *Queue) prepare(ctx context.Context, consumer string, limit int) ([]*backends.Delivery, int64, error) {
	now := time.Now()
	q.claimMu.Lock()
	claim := now.Sub(q.lastClaim) >= min(max(q.opts.Lease/4, 10*time.Millisecond), time.Second)
	if !claim && now.Before(q.nextPrepare) {
		nextDue := q.nextDue
		q.claimMu.Unlock()
		return nil, nextDue, nil
	}
	cursor := q.cursor
	if claim {
		q.lastClaim = now
	}
	q.nextPrepare = now.Add(prepareEvery)
	q.claimMu.Unlock()
	flag := "0"
	if claim {
		flag = "1"
	}
	res, err := prepareScript.Run(ctx, q.rdb, q.keys[:3],
		now.UnixMilli(), 1000, flag, consumer, q.opts.Lease.Milliseconds(), cursor, limit, q.opts.Group).Slice()
	if isNoGroup(err) {
		return nil, 0, q.createGroup(ctx)
	}
	if err != nil {
		q.claimMu.Lock()
		q.nextPrepare = time.Time{} // try again on the next Receive
		q.claimMu.Unlock()
		if ctx.Err() != nil {
			return nil, 0, nil
		}
		return nil, 0, q.errorf("receive: %w", classify(err))
	}
	var nextDue int64
	if s, ok := res[0].(string); ok {
		f, _ := strconv.ParseFloat(s, 64)
		nextDue = int64(f)
	}
	q.claimMu.Lock()
	if claim {
		q.cursor, _ = res[1].(string)
	}
	q.nextDue = nextDue
	if nextDue > 0 {
		q.nextPrepare = minTime(q.nextPrepare, time.UnixMilli(nextDue))
	}
	q.claimMu.Unlock()
	var ds []*backends.Delivery
	leaseUntil := now.Add(q.opts.Lease)
	for _, r := range res[2:] {
		e, _ := r.([]any)
		if len(e) != 3 {
			continue
		}
		id, _ := e[0].(string)
		count, _ := e[2].(int64)
		fields, _ := e[1].([]any)
		values := make(map[string]any, len(fields)/2)
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			values[k] = fields[i+1]
		}
		if d := q.delivery(ctx, id, values, count, consumer, leaseUntil); d != nil {
			ds = append(ds, d)
		}
	}
	return ds, nextDue, nil
}

// settle runs an ownership-checked script for d.
func (q *Queue) settle(ctx context.Context, op string, s *goredis.Script, keys []string, d *backends.Delivery, extra ...any) error {
	if q.closed.Load() {
		return q.errorf("%s: %w", op, backends.ErrClosed)
	}
	id, count, consumer, err := parseReceipt(d.Receipt)
	if err != nil {
		return q.errorf("%s: %w", op, err)
	}
	args := append([]any{q.opts.Group, id, consumer, count}, extra...)
	n, err := s.Run(ctx, q.rdb, keys, args...).Int()
	if err != nil {
		return q.errorf("%s job %s: %w", op, d.Job.ID, classify(err))
	}
	if n == 0 {
		return q.errorf("%s job %s: %w", op, d.Job.ID, backends.ErrLeaseLost)
	}
	return nil
}

// Ack acknowledges and deletes the entry: the job is never delivered again.
// ErrLeaseLost when another delivery of it was made since. Concurrent Ack
// (and AckWithResult) calls share one script call.
func (q *Queue) Ack(ctx context.Context, d *backends.Delivery) error {
	if err := q.ack(ctx, d, recordWrite{}); err != nil {
		return q.errorf("ack job %s: %w", d.Job.ID, err)
	}
	return nil
}

// ack acks d and, when rec.key is set, writes the record first, in one
// script call grouped with concurrent ones.
func (q *Queue) ack(ctx context.Context, d *backends.Delivery, rec recordWrite) error {
	if q.closed.Load() {
		return backends.ErrClosed
	}
	id, count, consumer, err := parseReceipt(d.Receipt)
	if err != nil {
		return err
	}
	it := settleItem{entry: id, count: count, consumer: consumer, rec: rec}
	if q.settles != nil {
		return q.settles.Do(ctx, it)
	}
	return batch.Send(ctx, q.settleBatch, it)
}

func (q *Queue) settleBatch(ctx context.Context, reqs []*batch.Call[settleItem]) {
	settle(ctx, q.rdb, q.opts.Stream, q.opts.Group, reqs)
}

// Nack puts the job back, available after delay, and acknowledges the entry, atomically.
func (q *Queue) Nack(ctx context.Context, d *backends.Delivery, delay time.Duration) error {
	due := int64(0)
	if delay > 0 {
		due = time.Now().Add(delay + time.Millisecond - 1).UnixMilli() // never before the delay
	}
	if err := q.settle(ctx, "nack", nackScript, q.keys[:3], d, d.Job.ID, d.Attempt, due); err != nil {
		return err
	}
	// Move it back on time even while Receive skips prepareScript.
	q.claimMu.Lock()
	if due > 0 && (q.nextDue == 0 || due < q.nextDue) {
		q.nextDue = due
		q.nextPrepare = minTime(q.nextPrepare, time.UnixMilli(due))
	}
	q.claimMu.Unlock()
	return nil
}

// Extend resets the entry's idle time, so its lease ends Lease from now: the
// lease argument cannot be honoured per entry in Redis and only documents the
// caller's intent. d.LeaseUntil tells the truth; extend again before it.
func (q *Queue) Extend(ctx context.Context, d *backends.Delivery, lease time.Duration) error {
	now := time.Now()
	if err := q.settle(ctx, "extend", extendScript, q.keys[:1], d); err != nil {
		return err
	}
	d.LeaseUntil = now.Add(q.opts.Lease)
	return nil
}

// DeadLetter copies the job with dl's reason, attempts and last upstream
// answer to the dead-letter stream and acknowledges it, atomically.
func (q *Queue) DeadLetter(ctx context.Context, d *backends.Delivery, dl backends.DeadLetter) error {
	at := dl.At
	if at.IsZero() {
		at = time.Now()
	}
	return q.settle(ctx, "dead-letter", deadLetterScript, []string{q.keys[0], q.keys[3]}, d,
		q.opts.DeadLetterMax, dl.Reason, dl.Attempts, at.UnixMilli(), dl.LastStatus, dl.LastBody)
}

// DeadLetters returns up to max dead-letter entries, newest first.
func (q *Queue) DeadLetters(ctx context.Context, limit int) ([]backends.DeadLetter, error) {
	msgs, err := q.rdb.XRevRangeN(ctx, q.opts.DeadLetter, "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, q.errorf("dead letters: %w", classify(err))
	}
	out := make([]backends.DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		dl := backends.DeadLetter{}
		meta, _ := m.Values[fieldMeta].(string)
		body, _ := m.Values[fieldBody].(string)
		if j, err := wire.DecodeFields(meta, body); err == nil {
			dl.Job = j
		}
		dl.Reason, _ = m.Values["reason"].(string)
		s, _ := m.Values["attempts"].(string)
		dl.Attempts, _ = strconv.Atoi(s)
		s, _ = m.Values["status"].(string)
		dl.LastStatus, _ = strconv.Atoi(s)
		s, _ = m.Values["at"].(string)
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			dl.At = time.UnixMilli(ms)
		}
		if b, _ := m.Values["last_body"].(string); b != "" {
			dl.LastBody = []byte(b)
		}
		out = append(out, dl)
	}
	return out, nil
}

// Stats reports the backlog with one script: Depth is stream length + delayed
// jobs (exact, as acknowledged entries are deleted), Pending the group's
// pending entries. OldestAge comes from entry ids: the older of the stream's
// first entry and the stream time of the delayed job due first. A retried job
// is a new entry, so its age counts from its last entry into the stream, not
// from its first submission.
func (q *Queue) Stats(ctx context.Context) (backends.Stats, error) {
	res, err := statsScript.Run(ctx, q.rdb, []string{q.keys[0], q.keys[1], q.keys[3], q.keys[2]}, q.opts.Group).Slice()
	if err != nil {
		return backends.Stats{}, q.errorf("stats: %w", classify(err))
	}
	n := func(i int) int64 { v, _ := res[i].(int64); return v }
	s := backends.Stats{Depth: n(0) + n(1), Pending: n(2), Delayed: n(1), DeadLetters: n(3)}
	var oldest int64
	if first, _ := res[4].(string); first != "" {
		oldest, _ = strconv.ParseInt(first[:strings.IndexByte(first+"-", '-')], 10, 64)
	}
	if dt, _ := res[5].(string); dt != "" {
		if ms, err := strconv.ParseInt(dt, 10, 64); err == nil && (oldest == 0 || ms < oldest) {
			oldest = ms
		}
	}
	if oldest > 0 {
		s.OldestAge = max(time.Since(time.UnixMilli(oldest)), time.Nanosecond)
	}
	return s, nil
}

// Close stops the batcher (pending enqueues are still sent), makes further
// calls answer ErrClosed and closes the client if New created it. Unacked
// deliveries stay pending in Redis and are reclaimed after their lease.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	if q.enqueues != nil {
		q.enqueues.Close()
		q.settles.Close()
	}
	if q.ownClient {
		return q.rdb.Close()
	}
	return nil
}
