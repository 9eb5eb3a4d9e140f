package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/internal/batch"
)

// recordWrite is one record to store (see ResultsLayout.write).
type recordWrite struct {
	key, tomb string
	value     []byte
	final     bool  // completed or failed: written only if no tombstone exists, which it then writes
	expire    int64 // final: the record's expiry (unix ms); else its TTL (ms)
	tombAt    int64 // final: the tombstone's expiry (unix ms)
}

// settleItem is one call's share of a settle round trip: an ack of a
// delivery (Queue.Ack), a record write (Results.Create and Update), or both
// (ResultsQueue.AckWithResult).
type settleItem struct {
	entry, count, consumer string // the delivery to ack (its receipt); entry "" when none
	rec                    recordWrite
}

func (it settleItem) size() int { return len(it.rec.value) }

// settleScript writes records and acks deliveries, for many calls at once.
//
// KEYS[1] is the stream when ARGV[1] (the group) is not empty; then come a
// record key and its tombstone key for each item with a record, in order.
// ARGV[2] is the number of ranges that follow, as quadruples: a consumer, the
// lowest and highest entry ids it acks here, and how many pending entries to
// read between them. Then each item is seven arguments: the entry id (empty:
// no ack), its delivery count and its consumer; the record kind (empty:
// none, 'f': final, else pending), its value, its expiry (final: PXAT, else PX)
// and its tombstone's expiry (PXAT).
//
// A final record is written only when SET NX creates its tombstone; a
// pending one only when no tombstone exists: a completed or failed record
// is never replaced, and no record has to be read to know it. An entry is
// acked (XACK and XDEL, once for all) only if its consumer still holds it
// with the same delivery count; one XPENDING per consumer range reads that
// for every item at once (one XPENDING per entry when the range held more
// pending entries than asked for). Each item answers 1 when acked, plus 2
// when its record was refused because the job is already finished.
var settleScript = goredis.NewScript(`
local group = ARGV[1]
local held, full = {}, {}
local a = 3
for r = 1, tonumber(ARGV[2]) do
  local c, n = ARGV[a], tonumber(ARGV[a+3])
  local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], group, ARGV[a+1], ARGV[a+2], n, c)
  if ok then
    for _, e in ipairs(p) do held[e[1]] = e end
    if #p >= n then full[c] = true end
  end
  a = a + 4
end
local k = 1
if group ~= '' then k = 2 end
local out, acks = {}, {}
while a <= #ARGV do
  local id, count, consumer, kind = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3]
  local res = 0
  if kind ~= '' then
    if kind == 'f' then
      if redis.call('SET', KEYS[k+1], '1', 'PXAT', ARGV[a+6], 'NX') then
        redis.call('SET', KEYS[k], ARGV[a+4], 'PXAT', ARGV[a+5])
      else
        res = 2
      end
    elseif redis.call('EXISTS', KEYS[k+1]) == 1 then
      res = 2
    else
      redis.call('SET', KEYS[k], ARGV[a+4], 'PX', ARGV[a+5])
    end
    k = k + 2
  end
  if id ~= '' then
    local e = held[id]
    if e == nil and full[consumer] then
      local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], group, id, id, 1)
      if ok and #p == 1 then e = p[1] end
    end
    if e ~= nil and e[2] == consumer and e[4] == tonumber(count) then
      acks[#acks+1] = id
      res = res + 1
    end
  end
  out[#out+1] = res
  a = a + 7
end
if #acks > 0 then
  redis.call('XACK', KEYS[1], group, unpack(acks))
  redis.call('XDEL', KEYS[1], unpack(acks))
end
return out
`)

// settle answers reqs with one settleScript call on stream and group (both
// "" when no request acks). Each request's err is nil, or wraps
// backends.ErrFinished (its record was refused; its ack still happened),
// backends.ErrLeaseLost (not acked; its record, if any, was still written),
// or the round trip's error.
func settle(ctx context.Context, rdb goredis.UniversalClient, rep Replicas, stream, group string, reqs []*batch.Call[settleItem]) {
	keys, args := settleArgs(stream, group, reqs)
	res, err := runScript(ctx, rdb, settleScript, rep, keys, args...).Int64Slice()
	settled(reqs, res, err)
}

// settleEach is settle for record writes whose keys do not share a slot (on
// a cluster each record has its own): one script call per record,
// pipelined, grouped by primary.
func settleEach(ctx context.Context, rdb goredis.UniversalClient, rep Replicas, health *primaries, reqs []*batch.Call[settleItem]) {
	calls := make([]scriptCall, len(reqs))
	for i := range reqs {
		keys, args := settleArgs("", "", reqs[i:i+1])
		calls[i] = scriptCall{keys, args}
	}
	for i, cmd := range runEach(ctx, rdb, settleScript, rep, health, calls) {
		res, err := cmd.Int64Slice()
		settled(reqs[i:i+1], res, err)
	}
}

// settleArgs are settleScript's keys and arguments for reqs.
func settleArgs(stream, group string, reqs []*batch.Call[settleItem]) ([]string, []any) {
	keys := make([]string, 0, 1+2*len(reqs))
	if group != "" {
		keys = append(keys, stream)
	}
	ranges := settleRanges(reqs)
	args := make([]any, 0, 2+4*len(ranges)+7*len(reqs))
	args = append(args, group, len(ranges))
	for _, r := range ranges {
		args = append(args, r.consumer, r.lo, r.hi, r.n+pendingSlack)
	}
	for _, r := range reqs {
		it := &r.Item
		kind, exp := "", int64(0)
		if it.rec.key != "" {
			kind, exp = "p", it.rec.expire
			if it.rec.final {
				kind = "f"
			}
			keys = append(keys, it.rec.key, it.rec.tomb)
		}
		args = append(args, it.entry, it.count, it.consumer, kind, it.rec.value, exp, it.rec.tombAt)
	}
	return keys, args
}

// settled sets each request's error from settleScript's answer.
func settled(reqs []*batch.Call[settleItem], res []int64, err error) {
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("settle script answered %d results for %d calls", len(res), len(reqs))
	}
	for i, r := range reqs {
		switch {
		case err != nil:
			r.Err = classify(err)
		case res[i]&2 != 0 && r.Item.entry != "" && res[i]&1 == 0:
			r.Err = fmt.Errorf("%w, and %w", backends.ErrFinished, backends.ErrLeaseLost)
		case res[i]&2 != 0:
			r.Err = backends.ErrFinished
		case r.Item.entry != "" && res[i]&1 == 0:
			r.Err = backends.ErrLeaseLost
		}
	}
}

// pendingSlack is how many more pending entries than it acks a consumer's
// range reads: the consumer's other deliveries in flight whose ids fall in
// between. Beyond it the script checks the entries one by one.
var pendingSlack = 512

// settleRange is the span of entry ids one consumer acks in a round trip.
type settleRange struct {
	consumer, lo, hi string
	n                int
}

func settleRanges(reqs []*batch.Call[settleItem]) []settleRange {
	var out []settleRange
next:
	for _, r := range reqs {
		it := &r.Item
		if it.entry == "" {
			continue
		}
		for i := range out {
			g := &out[i]
			if g.consumer != it.consumer {
				continue
			}
			if compareIDs(it.entry, g.lo) < 0 {
				g.lo = it.entry
			}
			if compareIDs(it.entry, g.hi) > 0 {
				g.hi = it.entry
			}
			g.n++
			continue next
		}
		out = append(out, settleRange{consumer: it.consumer, lo: it.entry, hi: it.entry, n: 1})
	}
	return out
}

// compareIDs orders two stream entry ids ("ms-seq").
func compareIDs(a, b string) int {
	ams, aseq := splitID(a)
	bms, bseq := splitID(b)
	switch {
	case ams != bms:
		return cmpUint(ams, bms)
	default:
		return cmpUint(aseq, bseq)
	}
}

func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
