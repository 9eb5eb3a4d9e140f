package kafka

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// pollInterval bounds how long Receive waits when nothing arrives.
const pollInterval = time.Second

// Receive starts consumer's group member on first use, then waits for up to
// max jobs from the partitions this process owns. Deliveries from any member
// of this Queue may go to any consumer name: the name chooses the group
// member, not which records it sees. It returns no deliveries and a nil error
// when ctx ends or after pollInterval (also while the queue has not
// connected yet), ErrClosed after Close, and an error wrapping
// ErrUnavailable when the member cannot connect.
func (q *Queue) Receive(ctx context.Context, consumer string, max int) ([]*backends.Delivery, error) {
	if q.isClosed() {
		return nil, fmt.Errorf("kafka: receive: %w", backends.ErrClosed)
	}
	if max <= 0 {
		max = 1
	}
	timer := time.NewTimer(pollInterval)
	defer timer.Stop()
	// Group members join once the queue has connected; until then there is
	// nothing to deliver, and waiting here keeps callers from spinning.
	select {
	case <-q.connected:
	case <-ctx.Done():
		return nil, nil
	case <-timer.C:
		return nil, nil
	case <-q.done:
		return nil, fmt.Errorf("kafka: receive: %w", backends.ErrClosed)
	}
	if _, err := q.member(consumer); err != nil {
		return nil, err
	}
	for {
		out := q.takeRedo(nil, max)
		for len(out) < max {
			select {
			case e := <-q.ready:
				out = q.deliver(out, e)
				continue
			default:
			}
			break
		}
		if len(out) > 0 {
			return out, nil
		}
		select {
		case e := <-q.ready:
			if out = q.deliver(out, e); len(out) > 0 {
				// Take what else is ready without waiting.
				out = q.takeRedo(out, max)
				for len(out) < max {
					select {
					case e := <-q.ready:
						out = q.deliver(out, e)
						continue
					default:
					}
					break
				}
				return out, nil
			}
		case <-q.wake:
		case <-ctx.Done():
			return nil, nil
		case <-timer.C:
			return nil, nil
		case <-q.done:
			return nil, fmt.Errorf("kafka: receive: %w", backends.ErrClosed)
		}
	}
}

// takeRedo appends jobs whose lease expired, up to max in all.
func (q *Queue) takeRedo(out []*backends.Delivery, max int) []*backends.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(out) < max && len(q.redo) > 0 {
		e := q.redo[0]
		q.redo[0] = nil
		q.redo = q.redo[1:]
		out = q.leaseLocked(out, e)
	}
	if len(q.redo) > 0 {
		// Leave the token for another waiting Receive.
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return out
}

// deliver leases e and appends it, unless its partition was handed over.
func (q *Queue) deliver(out []*backends.Delivery, e *entry) []*backends.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.leaseLocked(out, e)
}

func (q *Queue) leaseLocked(out []*backends.Delivery, e *entry) []*backends.Delivery {
	c := e.c
	if c.revoking || c.revoked || e.done || (e.receipt != "" && !e.expired) {
		return out
	}
	if e.receipt != "" {
		// Delivered again after its lease expired: the old receipt is void.
		delete(q.held, e.receipt)
		c.held--
		e.expired = false
		e.attempt++
	}
	q.seq++
	e.receipt = c.topic + "/" + strconv.Itoa(int(c.partition)) + "/" + strconv.FormatInt(e.offset, 10) + "#" + strconv.FormatUint(q.seq, 10)
	e.leaseUntil = time.Now().Add(q.opts.Lease)
	if !e.delivered {
		e.delivered = true
		c.dirty = true // record the attempt for the next owner
	}
	c.held++
	q.held[e.receipt] = e
	return append(out, &backends.Delivery{Job: e.job, Attempt: e.attempt, Receipt: e.receipt, LeaseUntil: e.leaseUntil})
}

// heldLocked returns the entry d still holds, or an error.
func (q *Queue) heldLocked(d *backends.Delivery) (*entry, error) {
	e := q.held[d.Receipt]
	if e == nil {
		if q.isClosed() {
			return nil, fmt.Errorf("kafka: delivery %s: %w", d.Receipt, backends.ErrClosed)
		}
		return nil, fmt.Errorf("kafka: delivery %s: %w", d.Receipt, backends.ErrLeaseLost)
	}
	return e, nil
}

// finishLocked marks e finished and commits the finished prefix.
func (q *Queue) finishLocked(e *entry) {
	delete(q.held, e.receipt)
	e.receipt = ""
	e.expired = false
	e.c.held--
	e.done = true
	e.c.advance()
	q.depthDirty.Store(true)
}

// Ack finishes the delivery. Its offset is committed once every earlier
// record of the partition is finished. ErrLeaseLost when the lease expired
// or the partition was handed over.
func (q *Queue) Ack(_ context.Context, d *backends.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.heldLocked(d)
	if err != nil {
		return err
	}
	q.finishLocked(e)
	return nil
}

// Extend pushes the delivery's lease to now+lease.
func (q *Queue) Extend(_ context.Context, d *backends.Delivery, lease time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.heldLocked(d)
	if err != nil {
		return err
	}
	e.leaseUntil = time.Now().Add(lease)
	e.expired = false
	d.LeaseUntil = e.leaseUntil
	return nil
}

// Nack publishes the job to the retry topic, due after delay with the next
// attempt number, and then finishes the original. When the lease is lost
// while publishing, the job may be delivered twice (at-least-once).
func (q *Queue) Nack(ctx context.Context, d *backends.Delivery, delay time.Duration) error {
	e, err := q.heldEntry(d)
	if err != nil {
		return err
	}
	due := time.Now().Add(max(delay, 0))
	msg := q.copyMessage(q.opts.RetryTopic, e)
	msg.Headers = append(msg.Headers,
		sarama.RecordHeader{Key: []byte(hdrAttempt), Value: itoa(int64(d.Attempt + 1))},
		// Rounded up: a delay is a lower bound.
		sarama.RecordHeader{Key: []byte(hdrDue), Value: itoa((due.UnixNano() + 999_999) / 1_000_000)},
	)
	if err := q.produce(ctx, msg); err != nil {
		return err
	}
	return q.finishIfHeld(d, e)
}

// DeadLetter publishes the job with dl's reason, attempts and last answer to
// the dead-letter topic, then finishes the original.
func (q *Queue) DeadLetter(ctx context.Context, d *backends.Delivery, dl backends.DeadLetter) error {
	e, err := q.heldEntry(d)
	if err != nil {
		return err
	}
	at := dl.At
	if at.IsZero() {
		at = time.Now()
	}
	attempts := dl.Attempts
	if attempts == 0 {
		attempts = d.Attempt
	}
	msg := q.copyMessage(q.opts.DeadLetterTopic, e)
	msg.Headers = append(msg.Headers,
		sarama.RecordHeader{Key: []byte(hdrReason), Value: []byte(dl.Reason)},
		sarama.RecordHeader{Key: []byte(hdrAttempts), Value: itoa(int64(attempts))},
		sarama.RecordHeader{Key: []byte(hdrDeadAt), Value: itoa(at.UnixMilli())},
	)
	if dl.LastStatus != 0 {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(hdrLastStatus), Value: itoa(int64(dl.LastStatus))})
	}
	if len(dl.LastBody) > 0 {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(hdrLastBody), Value: append([]byte(nil), dl.LastBody...)})
	}
	if err := q.produce(ctx, msg); err != nil {
		return err
	}
	return q.finishIfHeld(d, e)
}

func (q *Queue) heldEntry(d *backends.Delivery) (*entry, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.heldLocked(d)
}

func (q *Queue) finishIfHeld(d *backends.Delivery, e *entry) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.held[d.Receipt] != e {
		return fmt.Errorf("kafka: delivery %s: %w", d.Receipt, backends.ErrLeaseLost)
	}
	q.finishLocked(e)
	return nil
}

// copyMessage builds a record carrying e's job to topic.
func (q *Queue) copyMessage(topic string, e *entry) *sarama.ProducerMessage {
	msg := &sarama.ProducerMessage{
		Topic:   topic,
		Value:   sarama.ByteEncoder(encodeJob(e.job)),
		Headers: []sarama.RecordHeader{{Key: []byte(hdrID), Value: []byte(e.job.ID)}},
	}
	if e.job.Key != "" {
		msg.Key = sarama.StringEncoder(e.job.Key)
	}
	return msg
}

// reap queues deliveries whose lease expired for another delivery (with the
// next attempt number). Until that happens the old holder's Ack, Nack,
// Extend or DeadLetter is still honoured; after it they answer ErrLeaseLost.
// Expired entries of partitions being handed over are abandoned to the next
// owner instead. It also marks the claims that changed, twice per commit
// interval. It ends at Close.
func (q *Queue) reap() {
	defer q.wg.Done()
	every := min(max(q.opts.Lease/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	flush := time.NewTicker(max(q.opts.CommitInterval/2, 5*time.Millisecond))
	defer flush.Stop()
	for {
		select {
		case <-q.done:
			return
		case <-flush.C:
			q.mu.Lock()
			for c := range q.claims {
				if c.dirty {
					c.mark()
				}
			}
			q.mu.Unlock()
		case now := <-t.C:
			q.mu.Lock()
			n := 0
			for r, e := range q.held {
				if e.expired || now.Before(e.leaseUntil) {
					continue
				}
				if e.c.revoking || e.c.revoked {
					// Handing the partition over: abandon it to the next owner.
					delete(q.held, r)
					e.receipt = ""
					e.c.held--
					continue
				}
				// The holder may still finish it until it is delivered again.
				e.expired = true
				q.redo = append(q.redo, e)
				n++
			}
			q.mu.Unlock()
			if n > 0 {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}
