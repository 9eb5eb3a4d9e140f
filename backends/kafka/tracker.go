package kafka

import (
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// claim tracks one partition owned by one group member for one generation.
// All fields are guarded by the Queue's mu.
//
// The committed offset (base) is the first offset not yet finished: every
// received record below it is finished, so a commit never passes an
// unfinished job. Records finished out of order above base, and the attempt
// numbers of delivered but unfinished ones, are written into the commit
// metadata so that the next owner skips the former and counts the latter.
type claim struct {
	sess      sarama.ConsumerGroupSession
	topic     string
	partition int32
	retry     bool // the retry topic: records carry a due time

	base    int64    // next offset to commit
	entries []*entry // received records from base on, in offset order
	// prior is what the previous owner recorded in the commit metadata:
	// offset → attempts made, or finishedMark when finished.
	prior map[int64]int
	held  int // entries currently leased to a consumer

	revoking bool // the partition is being handed over: deliver nothing more
	revoked  bool // handed over: acks answer ErrLeaseLost

	markedBase int64
	markedMeta string
	dirty      bool // changed since the last mark; the queue's flush marks it
}

// entry is one received record.
type entry struct {
	c       *claim
	offset  int64
	job     *backends.Job
	attempt int       // attempt number of the current or next delivery
	tried   int       // attempts earlier owners made (commit metadata)
	since   time.Time // the job's acceptance time, for OldestAge
	due     time.Time // retry records: not before

	receipt    string // current delivery; "" when not leased
	leaseUntil time.Time
	expired    bool // the lease ended; the holder may still finish it until it is delivered again
	delivered  bool // handed out at least once by this owner
	done       bool
}

const (
	finishedMark = -1
	metaVersion  = "ohq1"
	// maxMeta stays below Kafka's default offset.metadata.max.bytes (4096).
	// Entries that do not fit are left out: finished ones are then replayed
	// by the next owner, which at-least-once allows.
	maxMeta = 3500
)

// add appends a received record. It returns the entry, which is already done
// when the previous owner finished it.
func (c *claim) add(offset int64, job *backends.Job, attempt int, since, due time.Time) *entry {
	if c.base < 0 {
		// The claim started from a sentinel (nothing committed yet, so
		// OffsetOldest): the first record fixes the base.
		c.base = offset
	}
	e := &entry{c: c, offset: offset, job: job, attempt: attempt, since: since, due: due}
	if n, ok := c.prior[offset]; ok {
		delete(c.prior, offset)
		if n == finishedMark {
			e.done = true
		} else {
			e.tried = n
			e.attempt = max(e.attempt, n+1)
		}
	}
	c.entries = append(c.entries, e)
	if e.done {
		c.advance()
	}
	return e
}

// advance drops the finished prefix, moves base past it and leaves the new
// offset and metadata to be marked in the session (see mark; sarama's
// auto-commit commits them).
func (c *claim) advance() {
	i := 0
	for i < len(c.entries) && c.entries[i].done {
		c.base = c.entries[i].offset + 1
		i++
	}
	if i > 0 {
		clear(c.entries[:i])
		c.entries = c.entries[i:]
	}
	c.dirty = true
}

// mark records base and the current metadata in the session. A revoked
// claim's session is gone; nothing is marked then.
//
// Encoding the metadata walks every entry from base on, so acks and
// deliveries only set dirty, and the queue marks dirty claims twice per
// CommitInterval (the session commits what was marked last) and when the
// claim is released.
func (c *claim) mark() {
	c.dirty = false
	if c.revoked || c.sess == nil || c.base < 0 {
		return
	}
	meta := c.metadata()
	if c.base == c.markedBase && meta == c.markedMeta {
		return
	}
	c.markedBase, c.markedMeta = c.base, meta
	// MarkOffset only moves forward and ResetOffset only moves back or
	// stays: together they set the metadata of an unchanged offset. base
	// never goes below the offset the claim started from.
	c.sess.MarkOffset(c.topic, c.partition, c.base, meta)
	c.sess.ResetOffset(c.topic, c.partition, c.base, meta)
}

// metadata encodes, relative to base, the finished offsets above it and the
// attempts made on delivered unfinished ones: "ohq1;3,5:2" means base+3 is
// finished and base+5 was tried twice.
func (c *claim) metadata() string {
	var b strings.Builder
	add := func(off int64, n int) bool {
		item := strconv.FormatInt(off-c.base, 10)
		if n != finishedMark {
			item += ":" + strconv.Itoa(n)
		}
		if b.Len()+len(item)+1 > maxMeta {
			return false
		}
		if b.Len() == 0 {
			b.WriteString(metaVersion + ";")
		} else {
			b.WriteByte(',')
		}
		b.WriteString(item)
		return true
	}
	for _, e := range c.entries {
		switch {
		case e.done:
			if !add(e.offset, finishedMark) {
				return b.String()
			}
		case e.delivered:
			// attempt is that of the delivery made (or, after a lease
			// expiry, of the next one; counting it as made is harmless).
			if !add(e.offset, e.attempt) {
				return b.String()
			}
		case e.tried > 0:
			// Fetched but not delivered again yet: pass on what the
			// earlier owners tried, or the next owner starts over at 1.
			if !add(e.offset, e.tried) {
				return b.String()
			}
		}
	}
	for off, n := range c.prior {
		if off >= c.base && !add(off, n) {
			break
		}
	}
	return b.String()
}

// parseMetadata decodes metadata written by (*claim).metadata for a claim
// starting at base. Unknown or corrupt metadata yields nothing.
func parseMetadata(meta string, base int64) map[int64]int {
	rest, ok := strings.CutPrefix(meta, metaVersion+";")
	if !ok || rest == "" {
		return nil
	}
	m := make(map[int64]int)
	for item := range strings.SplitSeq(rest, ",") {
		offS, nS, tried := strings.Cut(item, ":")
		d, err := strconv.ParseInt(offS, 10, 64)
		if err != nil || d < 0 {
			return nil
		}
		n := finishedMark
		if tried {
			if n, err = strconv.Atoi(nS); err != nil || n < 0 {
				return nil
			}
		}
		m[base+d] = n
	}
	return m
}

// oldest returns the acceptance time of the oldest unfinished entry.
func (c *claim) oldest() (time.Time, bool) {
	var t time.Time
	found := false
	for _, e := range c.entries {
		if !e.done && (!found || e.since.Before(t)) {
			t, found = e.since, true
		}
	}
	return t, found
}
