package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// Queue is a backends.Queue on Kafka. All methods are safe for concurrent use.
//
// Goroutines: the background connection (see connect.go) and the lease
// reaper are started by New, the producer's result loop once connected;
// each consumer name's group member is started by its first Receive.
// Close stops and waits for all of them (see Close for the order).
type Queue struct {
	opts Options
	log  *slog.Logger
	cfg  *sarama.Config // the producer's

	conn       atomic.Pointer[conn]  // nil until connected
	connected  chan struct{}         // closed once conn is set
	firstTry   chan struct{}         // closed once the first connection attempt ended
	tried      sync.Once             // closes firstTry
	connectErr atomic.Pointer[error] // the last failed attempt's error
	dialCtx    context.Context       // every broker connection ends with it
	stopDial   context.CancelFunc

	// closeMu orders producer sends and publishing the connection against
	// Close: sends hold it shared.
	closeMu sync.RWMutex
	closed  bool
	done    chan struct{} // closed by Close

	ready chan *entry   // fetched records waiting for Receive
	wake  chan struct{} // cap 1: redo has entries

	mu      sync.Mutex
	members map[string]*member
	held    map[string]*entry // receipt → leased entry
	redo    []*entry          // lease expired: to be delivered again
	claims  map[*claim]struct{}
	seq     uint64

	depthMu     sync.Mutex
	depthAt     time.Time
	depth       int64
	sinceSample atomic.Int64 // enqueues since the depth sample
	depthDirty  atomic.Bool  // a job finished since the depth sample

	wg sync.WaitGroup // connection, producer result loop and reaper
}

var _ backends.Queue = (*Queue)(nil)

// New validates opts and returns at once: the queue connects to the brokers
// in the background (see connect.go), so New fails only on invalid options.
// With Options.CreateTopics the connection creates the topic, retry topic
// and dead-letter topic when missing.
func New(opts Options) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, err := opts.saramaConfig(opts.ClientID)
	if err != nil {
		return nil, err
	}
	q := &Queue{
		opts:      opts,
		log:       opts.Logger.With("queue", opts.Name),
		cfg:       cfg,
		connected: make(chan struct{}),
		firstTry:  make(chan struct{}),
		done:      make(chan struct{}),
		ready:     make(chan *entry, opts.Buffer),
		wake:      make(chan struct{}, 1),
		members:   make(map[string]*member),
		held:      make(map[string]*entry),
		claims:    make(map[*claim]struct{}),
	}
	q.dialCtx, q.stopDial = context.WithCancel(context.Background())
	q.dialUntilClosed(cfg)
	q.wg.Add(2)
	go q.connect()
	go q.reap()
	return q, nil
}

// results hands each producer confirmation to the Enqueue waiting for it.
// It ends when the producer closed both channels (after AsyncClose).
func (q *Queue) results(p sarama.AsyncProducer) {
	defer q.wg.Done()
	succ, errs := p.Successes(), p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			m.Metadata.(chan error) <- nil
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			pe.Msg.Metadata.(chan error) <- pe.Err
		}
	}
}

// Enqueue produces the job to the topic and returns once the brokers
// confirmed it (acks=all). The record key is job.Key. ErrFull when the
// group's lag reached MaxDepth; ErrUnavailable when the brokers did not
// confirm or the queue has not connected yet. When ctx ends after the record
// was handed to the producer the record may still be stored.
func (q *Queue) Enqueue(ctx context.Context, job *backends.Job) error {
	cn, err := q.connection(ctx)
	if err != nil {
		return fmt.Errorf("kafka: enqueue to %s: %w", q.opts.Topic, err)
	}
	if q.opts.MaxDepth > 0 {
		d, err := q.approxDepth(ctx, cn)
		if err != nil {
			return err
		}
		if d >= q.opts.MaxDepth {
			return fmt.Errorf("kafka: enqueue to %s: depth %d: %w", q.opts.Topic, d, backends.ErrFull)
		}
	}
	msg := &sarama.ProducerMessage{
		Topic:   q.opts.Topic,
		Value:   sarama.ByteEncoder(encodeJob(job)),
		Headers: []sarama.RecordHeader{{Key: []byte(hdrID), Value: []byte(job.ID)}},
	}
	if job.Key != "" {
		msg.Key = sarama.StringEncoder(job.Key)
	}
	if err := q.produce(ctx, msg); err != nil {
		return err
	}
	q.sinceSample.Add(1)
	return nil
}

// produce sends msg and waits for the brokers' confirmation.
func (q *Queue) produce(ctx context.Context, msg *sarama.ProducerMessage) error {
	res := make(chan error, 1)
	msg.Metadata = res
	q.closeMu.RLock()
	if q.closed {
		q.closeMu.RUnlock()
		return fmt.Errorf("kafka: produce to %s: %w", msg.Topic, backends.ErrClosed)
	}
	c := q.conn.Load()
	if c == nil { // only Enqueue produces before a delivery exists, and it waited for conn
		q.closeMu.RUnlock()
		return fmt.Errorf("kafka: produce to %s: %w: not connected", msg.Topic, backends.ErrUnavailable)
	}
	select {
	case c.producer.Input() <- msg:
		q.closeMu.RUnlock()
	case <-ctx.Done():
		q.closeMu.RUnlock()
		return fmt.Errorf("kafka: produce to %s: %w", msg.Topic, ctx.Err())
	}
	select {
	case err := <-res:
		if err != nil {
			return fmt.Errorf("kafka: produce to %s: %w: %w", msg.Topic, backends.ErrUnavailable, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: produce to %s: unconfirmed: %w", msg.Topic, ctx.Err())
	}
}

// Close stops the queue. Order: refuse new work and stop connecting (done),
// stop each group member (its claims end without waiting for held jobs,
// whose offsets stay uncommitted so the next owner delivers them again; the
// member commits what was finished and leaves the group), then flush and
// close the producer; when never connected, cancel the connection attempt
// in progress; wait for the connection loop, the result loop and the
// reaper; close the client and end every broker connection left.
func (q *Queue) Close() error {
	q.closeMu.Lock()
	if q.closed {
		q.closeMu.Unlock()
		return nil
	}
	q.closed = true
	close(q.done)
	c := q.conn.Load() // published under closeMu, so final now
	q.closeMu.Unlock()
	defer q.stopDial()

	q.mu.Lock()
	members := make([]*member, 0, len(q.members))
	for _, m := range q.members {
		members = append(members, m)
	}
	q.members = nil
	q.mu.Unlock()
	var errs []error
	for _, m := range members {
		errs = append(errs, m.stop())
	}
	if c != nil {
		c.producer.AsyncClose()
	} else {
		q.stopDial()
	}
	q.wg.Wait()
	if c != nil {
		if err := c.admin.Close(); err != nil && !errors.Is(err, sarama.ErrClosedClient) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka: close: %w", err)
	}
	return nil
}

// isClosed reports whether Close was called.
func (q *Queue) isClosed() bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}
