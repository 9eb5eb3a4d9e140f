package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
)

// Operator tooling on a queue (backends.Inspector): listing, cancelling,
// redriving and purging. None of it runs on a worker's path but the check
// in withhold, one SMISMEMBER per batch of new deliveries.
//
// A cancel is decided by the pending entries list: a job whose entry a
// consumer holds has started and cannot be cancelled; any other job is
// marked in the set cancelledKey (or, when it waits for a retry, taken out
// of the delayed set), in one script. A worker reads its new entries and
// then checks their jobs against the set: an entry delivered before the
// cancel was refused, one delivered after finds its mark. Marked entries
// are acknowledged and deleted without a replay, and their marks removed.

var _ backends.Inspector = (*Queue)(nil)

// Each shard has a set of its own (shardKeys.cancelled), beside its
// stream, so that the scripts touch one hash slot on a cluster; a queue of
// several shards runs each operation on every shard.

// entryJobID answers the job id of an entry's m field without decoding the
// rest: the id is the first string after the version byte.
const entryJobIDLua = `
local function jobid(m)
  if m == nil or #m < 2 then return '' end
  local n = string.byte(m, 2)
  if n >= 128 then return '' end
  return string.sub(m, 3, 2 + n)
end
local function field(f, name)
  for i = 1, #f, 2 do if f[i] == name then return f[i+1] end end
  return nil
end
`

// cancelScript: KEYS stream, delayed, delayed jobs, cancelled set; ARGV
// group, job id. Answers 0 when a consumer holds the job's entry (it
// started), 2 when the job waited for a retry and was removed, 1 when it is
// marked.
var cancelScript = goredis.NewScript(entryJobIDLua + `
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1000000)
if ok then
  for _, e in ipairs(p) do
    local r = redis.call('XRANGE', KEYS[1], e[1], e[1])
    if #r == 1 and jobid(field(r[1][2], 'm')) == ARGV[2] then return 0 end
  end
end
if redis.call('ZREM', KEYS[2], ARGV[2]) == 1 then
  local id = ARGV[2]
  redis.call('HDEL', KEYS[3], id .. ':m', id .. ':b', id .. ':a', id .. ':t')
  return 2
end
redis.call('SADD', KEYS[4], ARGV[2])
return 1
`)

// dropCancelledScript: KEYS stream, cancelled set; ARGV group, then pairs
// of entry id and job id. It acks and deletes each entry and removes the
// job's mark.
var dropCancelledScript = goredis.NewScript(`
for i = 2, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
  redis.call('SREM', KEYS[2], ARGV[i+1])
end
return 1
`)

// redriveScript: KEYS stream, dead-letter stream; ARGV dead-letter entry
// ids. Each entry still there is added to the stream as a new job (no
// attempts field: a fresh attempt budget) and deleted from the dead
// letters. Answers how many moved.
var redriveScript = goredis.NewScript(`
local n = 0
for i = 1, #ARGV do
  local e = redis.call('XRANGE', KEYS[2], ARGV[i], ARGV[i])
  if #e == 1 then
    local f, m, b = e[1][2], nil, ''
    for j = 1, #f, 2 do
      if f[j] == 'm' then m = f[j+1] elseif f[j] == 'b' then b = f[j+1] end
    end
    if m then
      redis.call('XADD', KEYS[1], '*', 'm', m, 'b', b)
      n = n + 1
    end
    redis.call('XDEL', KEYS[2], ARGV[i])
  end
end
return n
`)

// WithdrawsCancelled is true: see withhold.
func (q *Queue) WithdrawsCancelled() bool { return true }

// withhold answers ds, deliveries of shard sh, without those of cancelled
// jobs, which it acknowledges and deletes: one SMISMEMBER for the batch.
func (q *Queue) withhold(ctx context.Context, sh *shard, ds []*backends.Delivery) ([]*backends.Delivery, error) {
	if len(ds) == 0 {
		return ds, nil
	}
	ids := make([]any, len(ds))
	for i, d := range ds {
		ids[i] = d.Job.ID
	}
	marked, err := q.rdb.SMIsMember(ctx, sh.cancelled, ids...).Result()
	if err != nil {
		// Unchecked deliveries stay pending and are checked again when
		// their lease expires and another Receive reclaims them.
		return nil, q.errorf("receive: check cancelled jobs: %w", classify(err))
	}
	kept := ds[:0]
	var drop []any
	for i, d := range ds {
		if !marked[i] {
			kept = append(kept, d)
			continue
		}
		entry, _, _, _, _ := q.parseReceipt(d.Receipt)
		drop = append(drop, entry, d.Job.ID)
	}
	if len(drop) > 0 {
		args := append([]any{q.opts.Group}, drop...)
		if err := dropCancelledScript.Run(ctx, q.rdb, []string{sh.stream, sh.cancelled}, args...).Err(); err != nil {
			q.log.Warn("cancelled jobs stay pending until their lease ends", "err", err)
		} else {
			q.log.Info("dropped cancelled jobs", "jobs", len(drop)/2)
		}
	}
	return kept, nil
}

// Cancel withdraws job id unless a consumer holds it (ErrStarted). It does
// not know whether the queue holds the job at all: an id it never sees
// leaves a mark behind until Uncancel removes it.
//
// A sharded queue does not know which shard holds the job: it cancels it in
// every shard, and when one of them holds it started, takes the marks of
// the others back.
func (q *Queue) Cancel(ctx context.Context, id string) error {
	var marked []*shard
	started := false
	for _, sh := range q.shards {
		n, err := cancelScript.Run(ctx, q.rdb, []string{sh.stream, sh.delayed, sh.delayedJobs, sh.cancelled}, q.opts.Group, id).Int()
		if err != nil {
			return q.errorf("cancel %s: %w", id, classify(err))
		}
		switch n {
		case 0:
			started = true
		case 1:
			marked = append(marked, sh)
		}
	}
	if !started {
		return nil
	}
	for _, sh := range marked {
		if err := q.rdb.SRem(ctx, sh.cancelled, id).Err(); err != nil {
			return q.errorf("cancel %s: %w", id, classify(err))
		}
	}
	return q.errorf("cancel %s: %w", id, backends.ErrStarted)
}

// Uncancel removes the cancel mark of job id: the cancel that set it found
// the job already finished.
func (q *Queue) Uncancel(ctx context.Context, id string) error {
	for _, sh := range q.shards {
		if err := q.rdb.SRem(ctx, sh.cancelled, id).Err(); err != nil {
			return q.errorf("uncancel %s: %w", id, classify(err))
		}
	}
	return nil
}

// scanChunk is how many entries List reads per round trip.
const scanChunk = 500

// List answers the waiting jobs (the stream's entries no consumer holds,
// then the jobs waiting for a retry), the in-flight ones and the dead
// letters that pass f, each group oldest first (within each shard, shard
// after shard, for a sharded queue). It reads the whole stream in chunks:
// an operator's tool, not a worker's.
func (q *Queue) List(ctx context.Context, f backends.Filter) ([]backends.Entry, error) {
	var out []backends.Entry
	full := func() bool { return f.Limit > 0 && len(out) >= f.Limit }
	add := func(e backends.Entry) {
		if e.Job != nil && !full() && f.Match(&e) {
			out = append(out, e)
		}
	}
	for _, sh := range q.shards {
		if f.State == backends.StateDead || full() {
			break
		}
		held, err := q.held(ctx, sh)
		if err != nil {
			return nil, err
		}
		err = q.scan(ctx, sh.stream, func(m goredis.XMessage) bool {
			count, ok := held[m.ID]
			job, before, err := decodeEntry(m.Values)
			if err != nil {
				return true
			}
			e := backends.Entry{Job: job, State: backends.StateWaiting, Attempts: before}
			if ok {
				e.State, e.Attempts = backends.StateInFlight, before+int(count)
			}
			add(e)
			return !full()
		})
		if err != nil {
			return nil, err
		}
	}
	for _, sh := range q.shards {
		if f.State == backends.StateDead || f.State == backends.StateInFlight || full() {
			break
		}
		if err := q.listDelayed(ctx, sh, add); err != nil {
			return nil, err
		}
	}
	for _, sh := range q.shards {
		if full() || (f.State != "" && f.State != backends.StateDead) {
			break
		}
		err := q.scan(ctx, sh.deadLetter, func(m goredis.XMessage) bool {
			add(deadEntry(m))
			return !full()
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// held answers the entries consumers hold, with their delivery counts.
func (q *Queue) held(ctx context.Context, sh *shard) (map[string]int64, error) {
	p, err := q.rdb.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: sh.stream, Group: q.opts.Group, Start: "-", End: "+", Count: 1 << 20}).Result()
	if err != nil && !isNoGroup(err) {
		return nil, q.errorf("list: %w", classify(err))
	}
	held := make(map[string]int64, len(p))
	for _, e := range p {
		held[e.ID] = e.RetryCount
	}
	return held, nil
}

// scan calls each with the entries of stream, oldest first, until it
// answers false.
func (q *Queue) scan(ctx context.Context, stream string, each func(goredis.XMessage) bool) error {
	start := "-"
	for {
		msgs, err := q.rdb.XRangeN(ctx, stream, start, "+", scanChunk).Result()
		if err != nil {
			return q.errorf("list: %w", classify(err))
		}
		for _, m := range msgs {
			if !each(m) {
				return nil
			}
		}
		if len(msgs) < scanChunk {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// listDelayed adds the jobs waiting for a retry, due first first.
func (q *Queue) listDelayed(ctx context.Context, sh *shard, add func(backends.Entry)) error {
	ids, err := q.rdb.ZRange(ctx, sh.delayed, 0, -1).Result()
	if err != nil {
		return q.errorf("list: %w", classify(err))
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), scanChunk)]
		ids = ids[len(chunk):]
		fields := make([]string, 0, 3*len(chunk))
		for _, id := range chunk {
			fields = append(fields, id+":m", id+":b", id+":a")
		}
		vals, err := q.rdb.HMGet(ctx, sh.delayedJobs, fields...).Result()
		if err != nil {
			return q.errorf("list: %w", classify(err))
		}
		for i := range chunk {
			v := map[string]any{fieldMeta: vals[3*i], fieldBody: vals[3*i+1], fieldAttempts: vals[3*i+2]}
			if job, before, err := decodeEntry(v); err == nil {
				add(backends.Entry{Job: job, State: backends.StateWaiting, Attempts: before})
			}
		}
	}
	return nil
}

// deadEntry decodes a dead-letter stream entry; Job is nil when it does
// not decode.
func deadEntry(m goredis.XMessage) backends.Entry {
	e := backends.Entry{State: backends.StateDead}
	meta, _ := m.Values[fieldMeta].(string)
	body, _ := m.Values[fieldBody].(string)
	if j, err := wire.DecodeFields(meta, body); err == nil {
		e.Job = j
	}
	e.Reason, _ = m.Values["reason"].(string)
	s, _ := m.Values["attempts"].(string)
	e.Attempts, _ = strconv.Atoi(s)
	s, _ = m.Values["status"].(string)
	e.LastStatus, _ = strconv.Atoi(s)
	s, _ = m.Values["at"].(string)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		e.At = time.UnixMilli(ms)
	}
	return e
}

// Redrive moves the selected dead letters back to the stream as new
// entries (same job, no attempts carried over), each atomically with its
// removal from the dead letters, so that two redrives never move one dead
// letter twice. A sharded queue sends each shard's dead letters back to
// that shard.
func (q *Queue) Redrive(ctx context.Context, o backends.RedriveOptions) (int, error) {
	moved := 0
	for _, sh := range q.shards {
		n, err := q.redrive(ctx, sh, o)
		moved += n
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

func (q *Queue) redrive(ctx context.Context, sh *shard, o backends.RedriveOptions) (int, error) {
	var picked []goredis.XMessage
	var jobs []*backends.Job
	err := q.scan(ctx, sh.deadLetter, func(m goredis.XMessage) bool {
		if e := deadEntry(m); e.Job != nil && o.Selects(e.Job) {
			picked, jobs = append(picked, m), append(jobs, e.Job)
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	moved := 0
	for i, m := range picked {
		if o.Prepare != nil {
			err := o.Prepare(ctx, jobs[i])
			if errors.Is(err, backends.ErrSkip) {
				if err := q.rdb.XDel(ctx, sh.deadLetter, m.ID).Err(); err != nil {
					return moved, q.errorf("redrive: %w", classify(err))
				}
				continue
			}
			if err != nil {
				return moved, err
			}
		}
		n, err := redriveScript.Run(ctx, q.rdb, []string{sh.stream, sh.deadLetter}, m.ID).Int()
		if err != nil {
			return moved, q.errorf("redrive %s: %w", jobs[i].ID, classify(err))
		}
		moved += n
	}
	return moved, nil
}

// Purge drops the dead letters dead-lettered before cutoff (all when
// zero): an entry's id is the time it was dead-lettered, so one XTRIM
// MINID does it.
func (q *Queue) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	min := "+"
	if !cutoff.IsZero() {
		min = strconv.FormatInt(cutoff.UnixMilli(), 10)
	}
	total := 0
	for _, sh := range q.shards {
		var n int64
		var err error
		if min == "+" {
			n, err = q.rdb.XTrimMaxLen(ctx, sh.deadLetter, 0).Result()
		} else {
			n, err = q.rdb.XTrimMinID(ctx, sh.deadLetter, min).Result()
		}
		if err != nil {
			return total, q.errorf("purge: %w", classify(err))
		}
		total += int(n)
	}
	return total, nil
}

// recordCancelScript: KEYS record, tombstone; ARGV the value read, the
// cancelled value, its expiry and the tombstone's (PXAT). The record is
// replaced only if it still holds the value read and has no tombstone.
var recordCancelScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 1
`)

// Cancel marks the pending record of job id cancelled at now (expiring ttl
// later) and answers it: it reads the record and replaces it only if it is
// unchanged since, so a worker's mark of the job as processing and the
// cancel exclude each other. ErrNotFound or ErrExpired for an unknown id,
// ErrStarted when it is processing, ErrFinished when it has an outcome.
func (s *Results) Cancel(ctx context.Context, id string, now time.Time, ttl time.Duration) (*backends.Result, error) {
	for {
		raw, err := s.rdb.Get(ctx, s.key(id)).Bytes()
		if errors.Is(err, goredis.Nil) || isWrongType(err) {
			if _, err := s.Get(ctx, id); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("redis results: cancel %s: a record of an earlier release: %w", id, backends.ErrStarted)
		}
		if err != nil {
			return nil, fmt.Errorf("redis results: cancel %s: %w", id, classify(err))
		}
		r, err := decodeValue(id, raw)
		if err != nil {
			return nil, fmt.Errorf("redis results: cancel %s: %w", id, err)
		}
		if err := r.Cancellable(); err != nil {
			return nil, fmt.Errorf("redis results: cancel %s: %w", id, err)
		}
		r.Status, r.Error = backends.StatusCancelled, backends.CancelledReason
		r.UpdatedAt, r.CompletedAt = now, now
		w := s.layout.write(r, ttl)
		ok, err := recordCancelScript.Run(ctx, s.rdb, []string{w.key, w.tomb}, raw, w.value, w.expire, w.tombAt).Int()
		putValue(w.value)
		if err != nil {
			return nil, fmt.Errorf("redis results: cancel %s: %w", id, classify(err))
		}
		if ok == 1 {
			return r, nil
		}
		// The record changed between the read and the write: decide again.
	}
}

// Reopen replaces the record of r.ID, finished or not, with r (a pending
// record, kept PendingTTL), and removes its tombstone: a dead-lettered job
// sent back to its queue starts again.
func (s *Results) Reopen(ctx context.Context, r *backends.Result) error {
	if r.Status.Final() {
		return fmt.Errorf("redis results: reopen %s: status %q is final", r.ID, r.Status)
	}
	v := appendValue(getValue(), r)
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, s.tomb(r.ID))
		p.Set(ctx, s.key(r.ID), v, s.layout.PendingTTL)
		return nil
	})
	putValue(v)
	if err != nil {
		return fmt.Errorf("redis results: reopen %s: %w", r.ID, classify(err))
	}
	return nil
}

// Records answers the records in status st (of route, when not ""),
// oldest submission first, at most limit (≤ 0: all). It scans the store's
// keys: an operator's tool, not a request's.
func (s *Results) Records(ctx context.Context, st backends.Status, route string, limit int) ([]*backends.Result, error) {
	var out []*backends.Result
	var keys, ids []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		cmds, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, k := range keys {
				p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) && !isWrongType(err) {
			return fmt.Errorf("redis results: records: %w", classify(err))
		}
		for i, c := range cmds {
			b, err := c.(*goredis.StringCmd).Bytes()
			if err != nil {
				continue // expired since, or a record of an earlier release
			}
			r, err := decodeValue(ids[i], b)
			if err == nil && r.Status == st && (route == "" || r.Route == route) {
				out = append(out, r)
			}
		}
		keys, ids = keys[:0], ids[:0]
		return nil
	}
	err := scanKeys(ctx, s.rdb, s.layout.Prefix+"*", func(k string) error {
		// A record's name, as opposed to a tombstone's or an idempotency
		// key's: the prefix and the id (hash-tagged on a cluster).
		id := strings.TrimSuffix(strings.TrimPrefix(k[len(s.layout.Prefix):], "{"), "}")
		if len(id) != 32 || k != s.key(id) {
			return nil
		}
		ids = append(ids, id)
		if keys = append(keys, k); len(keys) == 500 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	return oldestFirst(out, limit), nil
}

// scanKeys calls each with every key matching match: on every primary of
// a cluster (one after the other), on the server otherwise.
func scanKeys(ctx context.Context, rdb goredis.UniversalClient, match string, each func(string) error) error {
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		var keys []string
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			iter := c.Scan(ctx, 0, match, 1000).Iterator()
			for iter.Next(ctx) {
				mu.Lock()
				keys = append(keys, iter.Val())
				mu.Unlock()
			}
			return iter.Err()
		})
		if err != nil {
			return fmt.Errorf("redis results: records: %w", classify(err))
		}
		for _, k := range keys {
			if err := each(k); err != nil {
				return err
			}
		}
		return nil
	}
	iter := rdb.Scan(ctx, 0, match, 1000).Iterator()
	for iter.Next(ctx) {
		if err := each(iter.Val()); err != nil {
			return err
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("redis results: records: %w", classify(err))
	}
	return nil
}

func oldestFirst(rs []*backends.Result, limit int) []*backends.Result {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].SubmittedAt.Before(rs[j].SubmittedAt) })
	if limit > 0 && len(rs) > limit {
		rs = rs[:limit]
	}
	return rs
}
