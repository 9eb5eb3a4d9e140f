// Package kafka is a queue backend on Apache Kafka, built with
// github.com/IBM/sarama.
//
// Kafka has no per-message lease, so at-least-once delivery is implemented
// here:
//
//   - Enqueue produces with an idempotent producer (acks=all) and returns only
//     after the broker confirmed the record. The job's Key is the record key,
//     so jobs of one key land on one partition and keep their order.
//   - The workers of one queue form a consumer group; every distinct consumer
//     name passed to Receive is one group member (its client id). Records of
//     the partitions a member owns are buffered in the Queue and handed out by
//     Receive.
//   - Each partition tracks its delivered offsets. The group's committed offset
//     covers only the contiguous prefix of finished records, so a job finishing
//     out of order never commits past an unfinished one. Finished offsets above
//     the committed one, and the attempt numbers of the unfinished ones, travel
//     in the commit metadata, so the next owner of the partition neither
//     replays finished jobs nor forgets how often a job was tried.
//   - Lease: a delivery not acked, nacked or extended within Lease is handed
//     out again by the same process (Attempt+1); from then on the old
//     receipt answers ErrLeaseLost (until then it is still honoured). A worker process that dies loses its
//     partitions at the group's session timeout and their next owner delivers
//     every unfinished job again.
//   - Nack publishes the job to the retry topic with its next attempt number
//     and due time in record headers, then finishes the original. The retry
//     topic is consumed by the same group; a record not yet due holds only its
//     own retry partition (records behind it wait too, so a delay is a lower
//     bound), never the main topic.
//   - DeadLetter publishes the job with the reason and the last answer to the
//     dead-letter topic, then finishes the original.
//   - On a rebalance, jobs of revoked partitions still held by a worker get up
//     to Options.RevokeTimeout to finish; whatever is still unfinished is then
//     abandoned (its ack answers ErrLeaseLost) and the next owner delivers it.
package kafka

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/IBM/sarama"
)

// Options configures a Queue. Zero values take the documented defaults.
type Options struct {
	// Name is the queue's configuration name, used in logs.
	Name string
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// Topic receives new jobs. Default "openhqm-requests".
	Topic string
	// Group is the consumer group of the workers. Default "openhqm-workers".
	Group string
	// RetryTopic receives nacked jobs with their due time. Default Topic+"-retry".
	RetryTopic string
	// DeadLetterTopic receives dead-lettered jobs. Default Topic+"-dlq".
	DeadLetterTopic string
	// Version is the Kafka protocol version, e.g. "3.6.0". Default "2.8.0";
	// at least "0.11.0" (the idempotent producer needs it).
	Version string
	// ClientID identifies the producer toward the brokers (the worker's
	// --name). Characters outside [A-Za-z0-9._-] are replaced by '_'.
	// Default "openhqm". Group members use the consumer name given to Receive.
	ClientID string
	// TLS enables TLS toward the brokers when non-nil. Not modified.
	TLS *tls.Config
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
	// Lease bounds how long one delivery may be held without Extend. Default 60s.
	Lease time.Duration
	// MaxDepth refuses Enqueue with ErrFull when the group's lag reaches it;
	// 0 means no limit. The lag is sampled at most every StatsInterval and
	// counted forward with this process's own enqueues in between.
	MaxDepth int64
	// StatsInterval is how old a lag sample used by MaxDepth may be. Default 1s.
	StatsInterval time.Duration
	// CommitInterval is how often marked offsets are committed. Default 1s.
	CommitInterval time.Duration
	// RevokeTimeout bounds how long a rebalance waits for held jobs of
	// revoked partitions to finish. Default 30s (keep it below the group's
	// rebalance timeout, sarama's default 60s).
	RevokeTimeout time.Duration
	// Buffer is how many fetched records may wait for Receive. Default 256.
	Buffer int
	// CreateTopics creates missing topics when connecting, with Partitions and
	// ReplicationFactor. Off by default: production topics are usually
	// provisioned by the platform team.
	CreateTopics      bool
	Partitions        int32 // default 3
	ReplicationFactor int16 // default 1
	// Logger receives the backend's logs. Default: discard.
	Logger *slog.Logger
	// Tune, when set, may adjust the sarama configuration after the defaults
	// were applied (timeouts, fetch sizes). It is called once per client.
	Tune func(*sarama.Config)
}

const defaultPartitions = 3

var errOptions = errors.New("invalid kafka options")

var invalidClientIDChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// sanitizeClientID makes s acceptable as a Kafka client id.
func sanitizeClientID(s string) string {
	if s == "" {
		return "openhqm"
	}
	return invalidClientIDChars.ReplaceAllString(s, "_")
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Brokers) == 0 {
		return o, fmt.Errorf("%w: no brokers", errOptions)
	}
	if o.Topic == "" {
		o.Topic = "openhqm-requests"
	}
	if o.Group == "" {
		o.Group = "openhqm-workers"
	}
	if o.RetryTopic == "" {
		o.RetryTopic = o.Topic + "-retry"
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = o.Topic + "-dlq"
	}
	if o.Topic == o.RetryTopic || o.Topic == o.DeadLetterTopic || o.RetryTopic == o.DeadLetterTopic {
		return o, fmt.Errorf("%w: topic, retry topic and dead-letter topic must differ", errOptions)
	}
	if o.Name == "" {
		o.Name = o.Topic
	}
	if o.Lease <= 0 {
		o.Lease = 60 * time.Second
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = time.Second
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = time.Second
	}
	if o.RevokeTimeout <= 0 {
		o.RevokeTimeout = 30 * time.Second
	}
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.Partitions <= 0 {
		o.Partitions = defaultPartitions
	}
	if o.ReplicationFactor <= 0 {
		o.ReplicationFactor = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.ClientID = sanitizeClientID(o.ClientID)
	return o, nil
}

// saramaConfig builds the configuration of one client: the producer's when
// clientID is the producer's, a group member's otherwise.
func (o Options) saramaConfig(clientID string) (*sarama.Config, error) {
	c := sarama.NewConfig()
	c.ClientID = sanitizeClientID(clientID)
	c.Version = sarama.V2_8_0_0
	if o.Version != "" {
		v, err := sarama.ParseKafkaVersion(o.Version)
		if err != nil {
			return nil, fmt.Errorf("%w: version %q: %w", errOptions, o.Version, err)
		}
		c.Version = v
	}
	if !c.Version.IsAtLeast(sarama.V0_11_0_0) {
		return nil, fmt.Errorf("%w: version %s is below 0.11.0, which the idempotent producer needs", errOptions, c.Version)
	}
	if o.TLS != nil {
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = o.TLS
	}
	switch o.SASLMechanism {
	case "":
	case sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
		c.Net.SASL.Enable = true
		c.Net.SASL.Mechanism = sarama.SASLMechanism(o.SASLMechanism)
		c.Net.SASL.User = o.SASLUser
		c.Net.SASL.Password = o.SASLPassword
		c.Net.SASL.Handshake = true
		switch o.SASLMechanism {
		case sarama.SASLTypeSCRAMSHA256:
			c.Net.SASL.SCRAMClientGeneratorFunc = scramSHA256
		case sarama.SASLTypeSCRAMSHA512:
			c.Net.SASL.SCRAMClientGeneratorFunc = scramSHA512
		}
	default:
		return nil, fmt.Errorf("%w: sasl mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", errOptions, o.SASLMechanism)
	}

	// Producer: idempotent, acks from all in-sync replicas, confirmations
	// returned so Enqueue can wait for them.
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Retry.Max = 5
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Partitioner = sarama.NewHashPartitioner

	// Consumer group.
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = true
	c.Consumer.Offsets.AutoCommit.Interval = o.CommitInterval
	c.Consumer.Return.Errors = true
	// Range splits each topic on its own, so every member gets its share of
	// the main topic (a total-count balancer may leave one member only
	// retry partitions).
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	// A revoked partition may wait RevokeTimeout for held jobs; the broker
	// must give the member that long to rejoin.
	if rt := o.RevokeTimeout + 10*time.Second; rt > c.Consumer.Group.Rebalance.Timeout {
		c.Consumer.Group.Rebalance.Timeout = rt
	}

	if o.Tune != nil {
		o.Tune(c)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errOptions, err)
	}
	return c, nil
}
