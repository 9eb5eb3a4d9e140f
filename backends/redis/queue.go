package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
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
	URL string // redis://host:port/db; ignored when Client, Sentinel or Cluster is set
	// Sentinel, or Cluster, replaces URL: the primary is found through
	// sentinels, or the queue lives on a Redis Cluster.
	Sentinel *Sentinel
	Cluster  *Cluster
	TLS      *tls.Config             // nil: plaintext, unless URL is rediss://
	Client   goredis.UniversalClient // shared client; the caller closes it
	Stream   string                  // stream key; default "openhqm-requests"
	Group    string                  // consumer group; default "openhqm-workers"
	// Shards splits the queue over that many streams (see keys.go), each
	// with its own hash tag, so that a cluster spreads them over its
	// primaries; default 1. Jobs keep their order within a shard only.
	Shards int
	// KeyedShards picks a job's shard by a hash of Job.Key, so that jobs
	// with equal keys share a shard and keep their order; false: shards in
	// turn, skipping for a second a shard whose primary just failed.
	KeyedShards bool
	// Replicas: after storing jobs, WAIT for this many replicas (see
	// Replicas); also after nacks and dead letters, and after records
	// written by AckWithResult.
	Replicas Replicas
	// DeadLetter is the dead-letter stream key; default Stream+":dlq".
	DeadLetter string
	// DeadLetterMax bounds the dead-letter stream (oldest entries trimmed); default 10000.
	DeadLetterMax int
	// MaxDepth: Enqueue answers ErrFull when stream length + delayed jobs
	// reach it; ≤ 0: unbounded. The check and the XADD are one script, so the
	// bound is exact. A sharded queue bounds each shard to
	// ⌈MaxDepth/Shards⌉ instead; a job picked in turn for a full shard tries
	// the others, a job whose key picked it (KeyedShards) answers ErrFull.
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
	shards    []*shard // one unless Options.Shards says more
	// shardDepth bounds each shard: MaxDepth split over the shards.
	shardDepth int
	log        *slog.Logger

	closed  atomic.Bool
	results *ResultsQueue // nil unless Options.Results is set (and not on a cluster)
	produce atomic.Uint32 // the shard after the last one a job went to
	consume atomic.Uint32 // the shard a Receive starts with, in turn
}

// shard is one stream of a queue and what goes with it: its keys, its
// batchers and its reclaim cursor.
type shard struct {
	index int
	shardKeys
	keys []string // stream, delayed, delayed jobs, dead letter: as the scripts take them

	enqueues *batch.Batcher[entry]      // nil when batching is disabled
	settles  *batch.Batcher[settleItem] // acks (with records, for a ResultsQueue); nil when batching is disabled

	// refusingUntil (unix ns): producers skip the shard until then; set
	// when a write failed, its primary unreachable or without the replicas
	// that must confirm it (see refused).
	refusingUntil atomic.Int64
	// failingUntil (unix ns): consumers of a sharded queue leave the shard
	// alone until then; set when a read failed (see fail).
	failingUntil atomic.Int64

	claimMu   sync.Mutex
	cursor    string // XAUTOCLAIM's cursor in this shard's stream
	lastClaim time.Time
	// nextPrepare is when Receive runs prepareScript again: at the latest
	// prepareEvery after the last run, sooner when a delayed job is due.
	nextPrepare time.Time
	nextDue     int64 // unix ms of the delayed job due first, as prepare last saw it; 0: none
}

// failFor is how long a shard whose primary failed is skipped: about the
// time a Sentinel or Cluster failover takes to be noticed.
const failFor = time.Second

// fail marks the shard failing for consumers when err says its Redis
// cannot be read.
func (sh *shard) fail(err error) {
	if errors.Is(err, backends.ErrUnavailable) {
		sh.failingUntil.Store(time.Now().Add(failFor).UnixNano())
	}
}

func (sh *shard) failing(now int64) bool { return sh.failingUntil.Load() > now }

// refused marks the shard refusing for producers when err says a write
// could not be stored there, or not confirmed by enough replicas (a
// promoted replica has none until another one syncs with it); any other
// outcome clears the mark.
func (sh *shard) refused(err error) {
	if errors.Is(err, backends.ErrUnavailable) {
		sh.refusingUntil.Store(time.Now().Add(failFor).UnixNano())
	} else {
		sh.refusingUntil.Store(0)
	}
}

// admit reports whether a producer may use the shard now: yes when it
// refused nothing lately; no while it is marked; and, once the mark
// expired, yes for the one producer that renews the mark first, whose job
// probes the shard while the others keep going elsewhere.
func (sh *shard) admit(now int64) bool {
	until := sh.refusingUntil.Load()
	return until == 0 || (until <= now && sh.refusingUntil.CompareAndSwap(until, now+int64(failFor)))
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
	opts.Shards = max(opts.Shards, 1)
	opts.Replicas = opts.Replicas.withDefaults()
	rdb, own, err := connect(opts.conn(), opts.Client)
	if err != nil {
		return nil, err
	}
	cluster := isCluster(rdb)
	q := &Queue{rdb: rdb, ownClient: own, opts: opts, log: opts.Logger.With("queue", opts.Stream), shardDepth: opts.MaxDepth}
	if opts.MaxDepth > 0 {
		q.shardDepth = (opts.MaxDepth + opts.Shards - 1) / opts.Shards
	}
	for i, k := range queueKeys(opts.Stream, opts.DeadLetter, opts.Shards, cluster) {
		sh := &shard{index: i, shardKeys: k, keys: []string{k.stream, k.delayed, k.delayedJobs, k.deadLetter}, cursor: "0-0"}
		q.shards = append(q.shards, sh)
		if err := q.createGroup(ctx, sh); err != nil {
			if own {
				rdb.Close()
			}
			return nil, err
		}
	}
	// On a cluster a record never shares its slot with a stream: the
	// records are written by the store, in round trips of their own.
	if opts.Results != nil && !cluster {
		l := opts.Results.withDefaults()
		q.opts.Results = &l // a copy: the caller's layout may change after New
		q.results = &ResultsQueue{Queue: q}
	} else {
		q.opts.Results = nil
	}
	if !opts.Batch.Disabled {
		for _, sh := range q.shards {
			sh.enqueues = batch.New(opts.Batch.options(), entry.size, func(ctx context.Context, reqs []*batch.Call[entry]) {
				q.enqueueBatch(ctx, sh, reqs)
			})
			sh.settles = batch.New(opts.Batch.options(), settleItem.size, func(ctx context.Context, reqs []*batch.Call[settleItem]) {
				q.settleBatch(ctx, sh, reqs)
			})
		}
	}
	return q, nil
}

func (o *Options) conn() Conn {
	return Conn{URL: o.URL, Sentinel: o.Sentinel, Cluster: o.Cluster, TLS: o.TLS}
}

func (q *Queue) errorf(format string, args ...any) error {
	return fmt.Errorf("redis queue %q: "+format, append([]any{q.opts.Stream}, args...)...)
}

func (q *Queue) createGroup(ctx context.Context, sh *shard) error {
	err := q.rdb.XGroupCreateMkStream(ctx, sh.stream, q.opts.Group, "0").Err()
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
	return q.enqueue(ctx, "enqueue", job, entry{meta: wire.AppendFields(nil, job), body: job.Body})
}

// enqueue stores e in the shard picked for job, grouped with concurrent
// calls unless batching is off.
//
// A job whose shard was picked in turn and is full tries the other shards:
// ErrFull means it was not stored, so the queue is full only when every
// shard is.
func (q *Queue) enqueue(ctx context.Context, op string, job *backends.Job, e entry) error {
	sh := q.pick(job)
	err := q.enqueueIn(ctx, sh, e)
	for k := 1; k < len(q.shards) && !q.opts.KeyedShards && errors.Is(err, backends.ErrFull); k++ {
		err = q.enqueueIn(ctx, q.shards[(sh.index+k)%len(q.shards)], e)
	}
	if err != nil {
		return q.errorf("%s %s: %w", op, job.ID, err)
	}
	return nil
}

func (q *Queue) enqueueIn(ctx context.Context, sh *shard, e entry) error {
	if sh.enqueues != nil {
		return sh.enqueues.Do(ctx, e)
	}
	return batch.Send(ctx, func(ctx context.Context, reqs []*batch.Call[entry]) { q.enqueueBatch(ctx, sh, reqs) }, e)
}

// pick is the shard a job goes to: the only one; with KeyedShards the hash
// of its key; else the next in turn that did not refuse a write in the last
// second (all of them did: the next in turn).
func (q *Queue) pick(job *backends.Job) *shard {
	n := uint32(len(q.shards))
	if n == 1 {
		return q.shards[0]
	}
	if q.opts.KeyedShards {
		h := fnv.New32a()
		h.Write([]byte(job.Key))
		return q.shards[h.Sum32()%n]
	}
	first := q.produce.Add(1) - 1
	now := time.Now().UnixNano()
	for k := range n {
		if sh := q.shards[(first+k)%n]; sh.admit(now) {
			if k > 0 {
				q.produce.Store(first + k + 1)
			}
			return sh
		}
	}
	return q.shards[first%n]
}

// enqueueBatch stores reqs in sh with one script call and sets each
// request's error.
func (q *Queue) enqueueBatch(ctx context.Context, sh *shard, reqs []*batch.Call[entry]) {
	var ttl int64
	if q.opts.Results != nil {
		ttl = q.opts.Results.PendingTTL.Milliseconds()
	}
	args := make([]any, 2, 2+3*len(reqs))
	args[0], args[1] = q.shardDepth, ttl
	keys := sh.keys[:2:2] // appending copies: sh.keys is shared
	for _, r := range reqs {
		args = append(args, r.Item.meta, r.Item.body, r.Item.rval)
		if r.Item.rkey != "" {
			keys = append(keys, r.Item.rkey)
		}
	}
	res, err := runScript(ctx, q.rdb, enqueueScript, q.opts.Replicas, keys, args...).Slice()
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("enqueue script answered %d results for %d jobs", len(res), len(reqs))
	}
	if err != nil {
		err = classify(err)
	}
	if len(q.shards) > 1 {
		sh.refused(err)
	}
	for i, r := range reqs {
		switch {
		case err != nil:
			r.Err = err
		case res[i] == int64(0):
			r.Err = backends.ErrFull
		}
	}
}

// receipt is what a Delivery needs to prove it still holds its entry, and
// which shard holds it.
func receipt(id string, count int64, shard int, consumer string) string {
	return id + "/" + strconv.FormatInt(count, 10) + "/" + strconv.Itoa(shard) + "/" + consumer
}

// parseReceipt splits a receipt; the shard is one of q's.
func (q *Queue) parseReceipt(r string) (id, count string, sh *shard, consumer string, err error) {
	id, rest, ok1 := strings.Cut(r, "/")
	count, rest, ok2 := strings.Cut(rest, "/")
	si, consumer, ok3 := strings.Cut(rest, "/")
	i, err := strconv.Atoi(si)
	if !ok1 || !ok2 || !ok3 || err != nil || i < 0 || i >= len(q.shards) {
		return "", "", nil, "", fmt.Errorf("malformed receipt %q", r)
	}
	return id, count, q.shards[i], consumer, nil
}

// Receive moves due delayed jobs back, reclaims up to max entries whose lease
// expired, and otherwise reads up to max new entries, blocking up to the poll
// interval (≤ 1s) or until the next delayed job is due.
//
// A sharded queue is read shard by shard, starting with the next in turn,
// so that every shard gets its share: first reclaims, then new entries
// without blocking, and only when all are empty a blocking read of one
// shard for a slice of the poll interval. A shard whose primary fails is
// left alone for a second while the others are read.
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
	if len(q.shards) == 1 {
		sh := q.shards[0]
		ds, nextDue, err := q.prepare(ctx, sh, consumer, limit)
		if err != nil || len(ds) > 0 {
			return ds, err
		}
		return q.read(ctx, sh, consumer, limit, q.blockFor(ctx, q.opts.PollInterval, nextDue))
	}
	return q.receiveShards(ctx, consumer, limit)
}

func (q *Queue) receiveShards(ctx context.Context, consumer string, limit int) ([]*backends.Delivery, error) {
	n := uint32(len(q.shards))
	first := q.consume.Add(1) - 1
	now := time.Now().UnixNano()
	var lastErr error
	var nextDue int64
	live := make([]*shard, 0, n)
	for k := range n {
		sh := q.shards[(first+k)%n]
		if sh.failing(now) {
			continue
		}
		ds, due, err := q.prepare(ctx, sh, consumer, limit)
		if err != nil {
			sh.fail(err)
			lastErr = err
			continue
		}
		if len(ds) > 0 {
			return ds, nil
		}
		if due > 0 && (nextDue == 0 || due < nextDue) {
			nextDue = due
		}
		live = append(live, sh)
	}
	for _, sh := range live {
		ds, err := q.read(ctx, sh, consumer, limit, -1)
		if err != nil {
			sh.fail(err)
			lastErr = err
			continue
		}
		if len(ds) > 0 {
			return ds, nil
		}
	}
	if len(live) == 0 {
		if lastErr == nil {
			lastErr = q.errorf("receive: %w: every shard failed in the last %v", backends.ErrUnavailable, failFor)
		}
		return nil, lastErr // the caller backs off
	}
	// All empty: wait on one shard, a different one each time, for a slice
	// of the poll interval, so that a job in any shard waits at most about
	// one poll interval.
	block := max(q.opts.PollInterval/time.Duration(len(live)), 50*time.Millisecond)
	ds, err := q.read(ctx, live[0], consumer, limit, q.blockFor(ctx, block, nextDue))
	if err != nil {
		live[0].fail(err)
	}
	return ds, err
}

// blockFor bounds a blocking read by the next delayed job and ctx.
func (q *Queue) blockFor(ctx context.Context, block time.Duration, nextDue int64) time.Duration {
	if nextDue > 0 {
		block = min(block, time.Until(time.UnixMilli(nextDue)))
	}
	if dl, ok := ctx.Deadline(); ok {
		block = min(block, time.Until(dl))
	}
	return max(block, time.Millisecond)
}

// read reads up to limit new entries of sh, blocking up to block (< 0: not
// at all).
func (q *Queue) read(ctx context.Context, sh *shard, consumer string, limit int, block time.Duration) ([]*backends.Delivery, error) {
	res, err := q.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: q.opts.Group, Consumer: consumer, Streams: []string{sh.stream, ">"},
		Count: int64(limit), Block: block,
	}).Result()
	if isNoGroup(err) {
		q.log.Warn("consumer group missing; recreating it", "stream", sh.stream, "err", err)
		return nil, q.createGroup(ctx, sh)
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
	var ds []*backends.Delivery
	for _, s := range res {
		for _, m := range s.Messages {
			if d := q.delivery(ctx, sh, m.ID, m.Values, 1, consumer, leaseUntil); d != nil {
				ds = append(ds, d)
			}
		}
	}
	return q.withhold(ctx, sh, ds) // cancelled jobs are never handed out
}

// delivery decodes an entry; an entry that cannot be decoded is moved to the
// dead-letter stream, since no worker could ever process it.
func (q *Queue) delivery(ctx context.Context, sh *shard, id string, values map[string]any, count int64, consumer string, leaseUntil time.Time) *backends.Delivery {
	job, before, err := decodeEntry(values)
	d := &backends.Delivery{Attempt: before + int(count), Receipt: receipt(id, count, sh.index, consumer), LeaseUntil: leaseUntil}
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
func (q *Queue) prepare(ctx context.Context, sh *shard, consumer string, limit int) ([]*backends.Delivery, int64, error) {
	now := time.Now()
	sh.claimMu.Lock()
	claim := now.Sub(sh.lastClaim) >= min(max(q.opts.Lease/4, 10*time.Millisecond), time.Second)
	if !claim && now.Before(sh.nextPrepare) {
		nextDue := sh.nextDue
		sh.claimMu.Unlock()
		return nil, nextDue, nil
	}
	cursor := sh.cursor
	if claim {
		sh.lastClaim = now
	}
	sh.nextPrepare = now.Add(prepareEvery)
	sh.claimMu.Unlock()
	flag := "0"
	if claim {
		flag = "1"
	}
	res, err := prepareScript.Run(ctx, q.rdb, sh.keys[:3],
		now.UnixMilli(), 1000, flag, consumer, q.opts.Lease.Milliseconds(), cursor, limit, q.opts.Group).Slice()
	if isNoGroup(err) {
		return nil, 0, q.createGroup(ctx, sh)
	}
	if err != nil {
		sh.claimMu.Lock()
		sh.nextPrepare = time.Time{} // try again on the next Receive
		sh.claimMu.Unlock()
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
	sh.claimMu.Lock()
	if claim {
		sh.cursor, _ = res[1].(string)
	}
	sh.nextDue = nextDue
	if nextDue > 0 {
		sh.nextPrepare = minTime(sh.nextPrepare, time.UnixMilli(nextDue))
	}
	sh.claimMu.Unlock()
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
		if d := q.delivery(ctx, sh, id, values, count, consumer, leaseUntil); d != nil {
			ds = append(ds, d)
		}
	}
	ds, err = q.withhold(ctx, sh, ds) // cancelled jobs are never handed out
	return ds, nextDue, err
}

// settle runs an ownership-checked script for d on the keys of its shard
// that keys picks, and WAITs for the replicas when rep says so.
func (q *Queue) settle(ctx context.Context, op string, s *goredis.Script, keys func(*shard) []string, rep Replicas, d *backends.Delivery, extra ...any) (*shard, error) {
	if q.closed.Load() {
		return nil, q.errorf("%s: %w", op, backends.ErrClosed)
	}
	id, count, sh, consumer, err := q.parseReceipt(d.Receipt)
	if err != nil {
		return nil, q.errorf("%s: %w", op, err)
	}
	args := append([]any{q.opts.Group, id, consumer, count}, extra...)
	n, err := runScript(ctx, q.rdb, s, rep, keys(sh), args...).Int()
	if err != nil {
		return sh, q.errorf("%s job %s: %w", op, d.Job.ID, classify(err))
	}
	if n == 0 {
		return sh, q.errorf("%s job %s: %w", op, d.Job.ID, backends.ErrLeaseLost)
	}
	return sh, nil
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
// script call grouped with concurrent ones of the same shard.
func (q *Queue) ack(ctx context.Context, d *backends.Delivery, rec recordWrite) error {
	if q.closed.Load() {
		return backends.ErrClosed
	}
	id, count, sh, consumer, err := q.parseReceipt(d.Receipt)
	if err != nil {
		return err
	}
	it := settleItem{entry: id, count: count, consumer: consumer, rec: rec}
	if sh.settles != nil {
		return sh.settles.Do(ctx, it)
	}
	return batch.Send(ctx, func(ctx context.Context, reqs []*batch.Call[settleItem]) { q.settleBatch(ctx, sh, reqs) }, it)
}

// settleBatch acks reqs of sh in one script call; when some of them write
// records (AckWithResult), it WAITs for the results' replicas too.
func (q *Queue) settleBatch(ctx context.Context, sh *shard, reqs []*batch.Call[settleItem]) {
	var rep Replicas
	if q.opts.Results != nil {
		for _, r := range reqs {
			if r.Item.rec.key != "" {
				rep = q.opts.Results.Replicas.withDefaults()
				break
			}
		}
	}
	settle(ctx, q.rdb, rep, sh.stream, q.opts.Group, reqs)
}

// Nack puts the job back, available after delay, and acknowledges the entry, atomically.
func (q *Queue) Nack(ctx context.Context, d *backends.Delivery, delay time.Duration) error {
	due := int64(0)
	if delay > 0 {
		due = time.Now().Add(delay + time.Millisecond - 1).UnixMilli() // never before the delay
	}
	sh, err := q.settle(ctx, "nack", nackScript, func(sh *shard) []string { return sh.keys[:3] }, q.opts.Replicas, d, d.Job.ID, d.Attempt, due)
	if err != nil {
		return err
	}
	// Move it back on time even while Receive skips prepareScript.
	sh.claimMu.Lock()
	if due > 0 && (sh.nextDue == 0 || due < sh.nextDue) {
		sh.nextDue = due
		sh.nextPrepare = minTime(sh.nextPrepare, time.UnixMilli(due))
	}
	sh.claimMu.Unlock()
	return nil
}

// Extend resets the entry's idle time, so its lease ends Lease from now: the
// lease argument cannot be honoured per entry in Redis and only documents the
// caller's intent. d.LeaseUntil tells the truth; extend again before it.
func (q *Queue) Extend(ctx context.Context, d *backends.Delivery, lease time.Duration) error {
	now := time.Now()
	if _, err := q.settle(ctx, "extend", extendScript, func(sh *shard) []string { return sh.keys[:1] }, Replicas{}, d); err != nil {
		return err
	}
	d.LeaseUntil = now.Add(q.opts.Lease)
	return nil
}

// DeadLetter copies the job with dl's reason, attempts and last upstream
// answer to the dead-letter stream of its shard and acknowledges it,
// atomically.
func (q *Queue) DeadLetter(ctx context.Context, d *backends.Delivery, dl backends.DeadLetter) error {
	at := dl.At
	if at.IsZero() {
		at = time.Now()
	}
	_, err := q.settle(ctx, "dead-letter", deadLetterScript, func(sh *shard) []string { return []string{sh.stream, sh.deadLetter} }, q.opts.Replicas, d,
		q.opts.DeadLetterMax, dl.Reason, dl.Attempts, at.UnixMilli(), dl.LastStatus, dl.LastBody)
	return err
}

// DeadLetters returns up to max dead-letter entries, newest first.
// A sharded queue answers the newest of all its shards' dead-letter streams.
func (q *Queue) DeadLetters(ctx context.Context, limit int) ([]backends.DeadLetter, error) {
	var out []backends.DeadLetter
	for _, sh := range q.shards {
		dls, err := q.deadLetters(ctx, sh, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, dls...)
	}
	if len(q.shards) > 1 {
		slices.SortStableFunc(out, func(a, b backends.DeadLetter) int { return b.At.Compare(a.At) })
		out = out[:min(len(out), limit)]
	}
	return out, nil
}

func (q *Queue) deadLetters(ctx context.Context, sh *shard, limit int) ([]backends.DeadLetter, error) {
	msgs, err := q.rdb.XRevRangeN(ctx, sh.deadLetter, "+", "-", int64(limit)).Result()
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
//
// A sharded queue answers the sums over its shards, and the oldest age of
// all.
func (q *Queue) Stats(ctx context.Context) (backends.Stats, error) {
	var s backends.Stats
	var oldest int64
	for _, sh := range q.shards {
		st, o, err := q.shardStats(ctx, sh)
		if err != nil {
			return backends.Stats{}, err
		}
		s.Depth += st.Depth
		s.Pending += st.Pending
		s.Delayed += st.Delayed
		s.DeadLetters += st.DeadLetters
		if o > 0 && (oldest == 0 || o < oldest) {
			oldest = o
		}
	}
	if oldest > 0 {
		s.OldestAge = max(time.Since(time.UnixMilli(oldest)), time.Nanosecond)
	}
	return s, nil
}

// shardStats answers sh's counts and the unix ms of its oldest job (0: none).
func (q *Queue) shardStats(ctx context.Context, sh *shard) (backends.Stats, int64, error) {
	res, err := statsScript.Run(ctx, q.rdb, []string{sh.stream, sh.delayed, sh.deadLetter, sh.delayedJobs}, q.opts.Group).Slice()
	if err != nil {
		return backends.Stats{}, 0, q.errorf("stats: %w", classify(err))
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
	return s, oldest, nil
}

// Close stops the batcher (pending enqueues are still sent), makes further
// calls answer ErrClosed and closes the client if New created it. Unacked
// deliveries stay pending in Redis and are reclaimed after their lease.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	for _, sh := range q.shards {
		if sh.enqueues != nil {
			sh.enqueues.Close()
			sh.settles.Close()
		}
	}
	if q.ownClient {
		return q.rdb.Close()
	}
	return nil
}
