package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// A Queue connects in the background: New never waits for a broker, so a
// cluster that is down when the process starts (or reloads) leaves it
// running and unready (Stats answers an error) instead of failing the start.
// Until the first connection, Enqueue and Stats answer errors wrapping
// backends.ErrUnavailable and Receive returns no deliveries. Once connected,
// sarama reconnects to brokers by itself; the connection is made only once.
const (
	connectBackoffMin = 200 * time.Millisecond
	connectBackoffMax = 10 * time.Second
	// connectLogEvery spaces the logs of repeated failures: a cluster that
	// stays down for hours must not fill the log with one line per attempt.
	connectLogEvery = time.Minute
)

// conn is what the producer side of a Queue uses once connected. It is
// published once and never changes.
type conn struct {
	client   sarama.Client // producer, admin and stats
	admin    sarama.ClusterAdmin
	producer sarama.AsyncProducer
}

// connectOnce makes the producer's client, admin and producer (and, with
// Options.CreateTopics, the topics).
func (q *Queue) connectOnce() (*conn, error) {
	client, err := sarama.NewClient(q.opts.Brokers, q.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w", q.opts.Brokers, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("admin client: %w", err)
	}
	if q.opts.CreateTopics {
		if err := createTopics(admin, q.opts); err != nil {
			admin.Close()
			return nil, err
		}
	}
	producer, err := sarama.NewAsyncProducerFromClient(client)
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("producer: %w", err)
	}
	return &conn{client: client, admin: admin, producer: producer}, nil
}

func createTopics(admin sarama.ClusterAdmin, o Options) error {
	for _, t := range []string{o.Topic, o.RetryTopic, o.DeadLetterTopic} {
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: o.Partitions, ReplicationFactor: o.ReplicationFactor}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return nil
}

// connect retries connectOnce with capped, jittered exponential backoff
// until it succeeds or the queue closes, then publishes the connection and
// starts the producer's result loop. Owned by the Queue: started by New,
// stopped and waited for by Close.
func (q *Queue) connect() {
	defer q.wg.Done()
	backoff := connectBackoffMin
	var lastLog time.Time
	for attempt := 1; ; attempt++ {
		c, err := q.connectOnce()
		if err == nil {
			if q.publish(c) && attempt > 1 {
				q.log.Info("kafka: connected", "attempt", attempt)
			}
			return
		}
		if q.isClosed() {
			return // the attempt failed because Close cancelled it
		}
		q.connectErr.Store(&err)
		q.tried.Do(func() { close(q.firstTry) })
		if now := time.Now(); now.Sub(lastLog) >= connectLogEvery {
			lastLog = now
			q.log.Warn("kafka: cannot connect; retrying in the background", "brokers", q.opts.Brokers, "attempt", attempt, "err", err)
		}
		// Jittered over the upper half: processes restarted together
		// do not retry in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, connectBackoffMax)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-q.done:
			t.Stop()
			return
		}
	}
}

// publish makes c the queue's connection unless Close came first, in which
// case it closes c. It answers whether c was published.
func (q *Queue) publish(c *conn) bool {
	q.closeMu.Lock()
	if q.closed {
		q.closeMu.Unlock()
		c.producer.Close() // nothing was sent on it
		c.admin.Close()    // and the client with it
		return false
	}
	q.conn.Store(c)
	q.wg.Add(1) // Close has not begun waiting: it sets closed first
	go q.results(c.producer)
	close(q.connected)
	q.tried.Do(func() { close(q.firstTry) })
	q.closeMu.Unlock()
	return true
}

// connection returns the queue's connection. Before the first connection
// attempt has finished it waits for it, so a queue used right after New
// against a reachable cluster works at once; after a failed attempt it
// answers an error wrapping backends.ErrUnavailable without waiting.
func (q *Queue) connection(ctx context.Context) (*conn, error) {
	if q.isClosed() {
		return nil, backends.ErrClosed
	}
	if c := q.conn.Load(); c != nil {
		return c, nil
	}
	select {
	case <-q.firstTry:
	case <-q.done:
		return nil, backends.ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: still connecting to %v: %w", backends.ErrUnavailable, q.opts.Brokers, ctx.Err())
	}
	if c := q.conn.Load(); c != nil {
		return c, nil
	}
	if p := q.connectErr.Load(); p != nil {
		return nil, fmt.Errorf("%w: %w", backends.ErrUnavailable, *p)
	}
	return nil, fmt.Errorf("%w: not connected to %v", backends.ErrUnavailable, q.opts.Brokers)
}

// dialUntilClosed makes every broker connection of cfg end with the queue:
// Close cancels dials in progress and closes the connections they made, so a
// connection attempt blocked on a broker that does not answer (sarama waits
// 30s per dial and per read, and retries) ends with Close. A dialer set by
// Options.Tune is kept.
func (q *Queue) dialUntilClosed(cfg *sarama.Config) {
	if cfg.Net.Proxy.Enable {
		return
	}
	// sarama takes a custom dialer only through its proxy setting; no proxy
	// is involved, the dialer connects directly as sarama's own would.
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = &dialer{ctx: q.dialCtx, d: net.Dialer{
		Timeout: cfg.Net.DialTimeout, KeepAlive: cfg.Net.KeepAlive, LocalAddr: cfg.Net.LocalAddr,
	}}
}

type dialer struct {
	ctx context.Context
	d   net.Dialer
}

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	c, err := d.d.DialContext(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &dialedConn{Conn: c, stop: context.AfterFunc(d.ctx, func() { c.Close() })}, nil
}

// dialedConn drops its close-on-cancel hook when sarama closes it, so
// reconnections over a long life do not pile hooks up.
type dialedConn struct {
	net.Conn
	stop func() bool
}

func (c *dialedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}
