package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// member is one consumer group member: one consumer name, one sarama client.
// Its goroutines (the Consume loop and the error logger) are owned by the
// member and stopped by stop.
type member struct {
	q      *Queue
	name   string
	log    *slog.Logger
	client sarama.Client
	admin  sarama.ClusterAdmin
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// prior is the commit metadata fetched in Setup for this generation,
	// consumed by ConsumeClaim. Guarded by priorMu (claims run concurrently).
	priorMu sync.Mutex
	prior   map[string]map[int32]*sarama.OffsetFetchResponseBlock
}

// member returns the group member of consumer, starting it on first use.
func (q *Queue) member(consumer string) (*member, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.members == nil {
		return nil, fmt.Errorf("kafka: receive: %w", backends.ErrClosed)
	}
	if m := q.members[consumer]; m != nil {
		return m, nil
	}
	cfg, err := q.opts.saramaConfig(consumer)
	if err != nil {
		return nil, err
	}
	q.dialUntilClosed(cfg)
	client, err := sarama.NewClient(q.opts.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka: consumer %s: %w: %w", consumer, backends.ErrUnavailable, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("kafka: consumer %s: %w: %w", consumer, backends.ErrUnavailable, err)
	}
	group, err := sarama.NewConsumerGroupFromClient(q.opts.Group, client)
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("kafka: consumer %s: %w: %w", consumer, backends.ErrUnavailable, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{
		q: q, name: consumer, log: q.log.With("consumer", consumer),
		client: client, admin: admin, group: group, cancel: cancel,
	}
	q.members[consumer] = m
	m.wg.Add(2)
	go m.run(ctx)
	go m.logErrors()
	return m, nil
}

// run joins the group and consumes until ctx ends, rejoining after each
// rebalance.
func (m *member) run(ctx context.Context) {
	defer m.wg.Done()
	topics := []string{m.q.opts.Topic, m.q.opts.RetryTopic}
	for {
		err := m.group.Consume(ctx, topics, m)
		if ctx.Err() != nil || errors.Is(err, sarama.ErrClosedConsumerGroup) {
			return
		}
		if err != nil {
			m.log.Warn("kafka consumer group session failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func (m *member) logErrors() {
	defer m.wg.Done()
	for err := range m.group.Errors() {
		m.log.Warn("kafka consumer error", "err", err)
	}
}

// stop leaves the group after committing what was finished, and waits for
// the member's goroutines.
func (m *member) stop() error {
	m.cancel()
	err := m.group.Close()
	m.wg.Wait()
	if cerr := m.admin.Close(); cerr != nil && !errors.Is(cerr, sarama.ErrClosedClient) {
		err = errors.Join(err, cerr)
	}
	return err
}

// Setup fetches the commit metadata of the claimed partitions, in which the
// previous owner recorded finished and attempted offsets.
func (m *member) Setup(sess sarama.ConsumerGroupSession) error {
	prior := make(map[string]map[int32]*sarama.OffsetFetchResponseBlock)
	claims := sess.Claims()
	resp, err := m.admin.ListConsumerGroupOffsets(m.q.opts.Group, claims)
	switch {
	case errors.Is(err, sarama.ErrGroupIDNotFound):
	case err != nil:
		// Without it, finished records above the committed offset are
		// delivered again: allowed by at-least-once.
		m.log.Warn("kafka: fetch commit metadata", "err", err)
	default:
		for t, ps := range claims {
			prior[t] = make(map[int32]*sarama.OffsetFetchResponseBlock, len(ps))
			for _, p := range ps {
				if b := resp.GetBlock(t, p); b != nil && b.Err == sarama.ErrNoError {
					prior[t][p] = b
				}
			}
		}
	}
	m.priorMu.Lock()
	m.prior = prior
	m.priorMu.Unlock()
	return nil
}

// Cleanup runs after every claim of the session ended.
func (m *member) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim feeds one partition's records to Receive until the session
// ends, then hands the partition over (see release).
func (m *member) ConsumeClaim(sess sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	q := m.q
	c := &claim{
		sess: sess, topic: cl.Topic(), partition: cl.Partition(),
		retry: cl.Topic() == q.opts.RetryTopic,
		base:  cl.InitialOffset(), markedBase: cl.InitialOffset(),
	}
	m.priorMu.Lock()
	if b := m.prior[c.topic][c.partition]; b != nil && b.Offset == c.base {
		c.prior = parseMetadata(b.Metadata, c.base)
		c.markedMeta = b.Metadata
	}
	m.priorMu.Unlock()
	q.mu.Lock()
	q.claims[c] = struct{}{}
	q.mu.Unlock()
	defer q.release(c)
	m.log.Debug("kafka: partition claimed", "topic", c.topic, "partition", c.partition, "offset", c.base, "generation", sess.GenerationID())

	ctx := sess.Context()
	for {
		var msg *sarama.ConsumerMessage
		select {
		case msg = <-cl.Messages():
			if msg == nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		case <-q.done:
			return nil
		}
		e := q.admit(c, msg)
		if e == nil {
			continue
		}
		// A retry record not yet due holds this retry partition only; the
		// other partitions are fetched by their own claims.
		if wait := time.Until(e.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-q.done:
				t.Stop()
				return nil
			}
		}
		select {
		case q.ready <- e:
		case <-ctx.Done():
			return nil
		case <-q.done:
			return nil
		}
	}
}

// admit adds a fetched record to its claim. It returns nil when there is
// nothing to deliver: the previous owner finished it, or it cannot be
// decoded (logged and finished so that it cannot block the partition).
func (q *Queue) admit(c *claim, msg *sarama.ConsumerMessage) *entry {
	job, err := decodeJob(msg.Value)
	attempt := 1
	if n, ok := headerInt(msg.Headers, hdrAttempt); ok && n > 1 && n < 1<<30 {
		attempt = int(n)
	}
	var due time.Time
	if c.retry {
		if n, ok := headerInt(msg.Headers, hdrDue); ok {
			due = time.UnixMilli(n)
		}
	}
	since := msg.Timestamp
	if job != nil && !job.CreatedAt.IsZero() {
		since = job.CreatedAt
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	e := c.add(msg.Offset, job, attempt, since, due)
	if e.done {
		return nil
	}
	if err != nil {
		q.log.Error("kafka: dropping undecodable record", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "err", err)
		e.done = true
		c.advance()
		return nil
	}
	return e
}

// release hands a claim's partition over. Jobs already leased get up to
// RevokeTimeout to finish (their acks still commit); after that, or at
// Close, the rest is abandoned: acks answer ErrLeaseLost and the next owner
// delivers them again. Nothing unfinished is ever committed.
func (q *Queue) release(c *claim) {
	q.mu.Lock()
	c.revoking = true
	held := c.held
	q.mu.Unlock()
	if held > 0 {
		deadline := time.NewTimer(q.opts.RevokeTimeout)
		tick := time.NewTicker(10 * time.Millisecond)
	wait:
		for {
			select {
			case <-q.done:
				break wait
			case <-deadline.C:
				break wait
			case <-tick.C:
				q.mu.Lock()
				held = c.held
				q.mu.Unlock()
				if held == 0 {
					break wait
				}
			}
		}
		deadline.Stop()
		tick.Stop()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	c.mark()
	c.revoked = true
	for _, e := range c.entries {
		if e.receipt != "" {
			delete(q.held, e.receipt)
			e.receipt = ""
			c.held--
		}
	}
	delete(q.claims, c)
}
