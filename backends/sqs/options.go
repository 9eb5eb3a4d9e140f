// Package sqs is a queue backend on Amazon SQS, built with the AWS SDK for
// Go v2.
//
// SQS leases natively, so the backend maps the queue contract onto it:
//
//   - A lease is the visibility timeout, set on every ReceiveMessage to
//     Options.Lease whatever the queue's own VisibilityTimeout is: a job held
//     by a dead worker comes back after the lease. SQS counts in whole
//     seconds, so the lease is rounded up to one (and LeaseUntil says so).
//   - Extend is ChangeMessageVisibility to the lease; Ack is DeleteMessage
//     (AckBatch deletes up to ten per request); a Nack with a delay is
//     ChangeMessageVisibility to the delay (at most SQS's 12 hours), so the
//     job stays in flight until it is due.
//   - Delivery.Attempt is the message's ApproximateReceiveCount. A Nack does
//     not change it; the redelivery after the delay is one more receive, so
//     attempts count up by one per delivery whatever ended the previous one
//     (nack, lease expiry, a crashed worker).
//   - DeadLetter sends the job to the dead-letter queue with the reason,
//     attempts and time as message attributes, then deletes it from the
//     queue. A RedrivePolicy on the queue stays a safety net for messages no
//     worker can finish (a job that crashes its worker every time).
//   - A message body is the base64 of the job's wire encoding (SQS bodies
//     must be text); a job whose body would exceed MaxMessageSize is refused
//     by Enqueue with ErrTooLarge.
//   - FIFO queues (a URL ending in .fifo): MessageGroupId is the job's Key
//     (its id when it has none, so unkeyed jobs do not wait for each
//     other) and MessageDeduplicationId its id.
//
// The IAM actions needed are sqs:SendMessage, sqs:ReceiveMessage,
// sqs:DeleteMessage, sqs:ChangeMessageVisibility and sqs:GetQueueAttributes
// on the queue, sqs:SendMessage and sqs:GetQueueAttributes on the dead-letter
// queue, and sqs:GetQueueUrl when the dead-letter queue is given by name.
package sqs

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/openhqm/openhqm/backends"
)

// MaxMessageSize is SQS's limit on a message, body and attributes together.
const MaxMessageSize = 256 << 10

// maxVisibility is SQS's longest visibility timeout: 12 hours.
const maxVisibility = 12 * time.Hour

// ErrTooLarge means the job's encoding does not fit an SQS message. It is a
// *backends.TooLargeError and wraps backends.ErrTooLarge.
var ErrTooLarge error = &backends.TooLargeError{Backend: "SQS", Limit: MaxMessageSize}

var errOptions = errors.New("invalid sqs options")

// Options configures a Queue. Zero values take the documented defaults.
type Options struct {
	// Name is the queue's configuration name, used in logs. Default: the
	// queue's name from QueueURL.
	Name string
	// QueueURL is the queue's URL, as GetQueueUrl answers it. Required.
	QueueURL string
	// Region is the queue's AWS region. Default: the region in QueueURL's
	// host when it is an AWS URL (the queue lives there, whatever
	// AWS_REGION says), else the SDK's (AWS_REGION, the shared config).
	Region string
	// Endpoint, when set, is the base URL of an SQS-compatible server to
	// talk to instead of AWS (tests, local runs).
	Endpoint string
	// Protocol is the wire protocol of SQS's API: ProtocolJSON (the
	// default, the SDK's) or ProtocolQuery. AWS speaks both; some
	// SQS-compatible servers (goaws 0.4, older emulators) speak only Query.
	Protocol Protocol
	// DeadLetter is the dead-letter queue: a queue name in the same account
	// and region (resolved with GetQueueUrl on first use) or a full URL.
	// Default: the queue's name + "-dlq" (before ".fifo" for a FIFO queue).
	DeadLetter string
	// Lease is the visibility timeout of a delivery; default 60s, rounded
	// up to whole seconds, at most 12h.
	Lease time.Duration
	// MaxDepth refuses Enqueue with ErrFull when the queue holds this many
	// messages (visible, in flight and delayed); 0 means no limit. SQS's
	// counts are approximate, and are sampled at most every StatsInterval
	// and counted forward with this process's enqueues in between, so the
	// bound is approximate too.
	MaxDepth int64
	// StatsInterval is how old a depth sample used by MaxDepth may be. Default 1s.
	StatsInterval time.Duration
	// Credentials, when set, replaces the SDK's default credential chain
	// (environment, shared config, web identity in Kubernetes, instance roles).
	Credentials aws.CredentialsProvider
	// Logger receives the backend's logs. Default: discard.
	Logger *slog.Logger
	// Tune, when set, may adjust the SDK client's options after the
	// defaults were applied (retries, HTTP client).
	Tune func(*awssqs.Options)
}

// Protocol is a wire protocol of SQS's API.
type Protocol string

const (
	// ProtocolJSON is AWS JSON 1.0, the SDK's default.
	ProtocolJSON Protocol = "json"
	// ProtocolQuery is the form-encoded Query protocol with XML answers,
	// SQS's original one.
	ProtocolQuery Protocol = "query"
)

func (o Options) withDefaults() (Options, error) {
	u, err := url.Parse(o.QueueURL)
	if o.QueueURL == "" || err != nil || u.Scheme == "" || u.Host == "" {
		return o, fmt.Errorf("%w: queue URL %q is not a URL", errOptions, o.QueueURL)
	}
	name := queueName(o.QueueURL)
	if name == "" {
		return o, fmt.Errorf("%w: queue URL %q names no queue", errOptions, o.QueueURL)
	}
	if o.Name == "" {
		o.Name = name
	}
	if o.Region == "" {
		o.Region = regionOf(o.QueueURL)
	}
	if o.DeadLetter == "" {
		if base, ok := strings.CutSuffix(name, ".fifo"); ok {
			o.DeadLetter = base + "-dlq.fifo"
		} else {
			o.DeadLetter = name + "-dlq"
		}
	}
	if o.DeadLetter == name || o.DeadLetter == o.QueueURL {
		return o, fmt.Errorf("%w: the dead-letter queue must not be the queue", errOptions)
	}
	switch o.Protocol {
	case "":
		o.Protocol = ProtocolJSON
	case ProtocolJSON, ProtocolQuery:
	default:
		return o, fmt.Errorf("%w: protocol %q is neither %q nor %q", errOptions, o.Protocol, ProtocolJSON, ProtocolQuery)
	}
	if o.Lease <= 0 {
		o.Lease = 60 * time.Second
	}
	o.Lease = min(o.Lease, maxVisibility)
	if o.StatsInterval <= 0 {
		o.StatsInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// queueName is the last path segment of a queue URL.
func queueName(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	p := strings.TrimSuffix(u.Path, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// regionOf finds the region in an AWS queue URL's host
// (sqs.REGION.amazonaws.com, or the legacy REGION.queue.amazonaws.com).
func regionOf(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	parts := strings.Split(u.Hostname(), ".")
	switch {
	case len(parts) >= 4 && parts[0] == "sqs":
		return parts[1]
	case len(parts) >= 4 && parts[1] == "queue":
		return parts[0]
	}
	return ""
}

// seconds is d in whole seconds for SQS, rounded up, within [lo, 12h].
func seconds(d time.Duration, lo int32) int32 {
	s := int32((min(d, maxVisibility) + time.Second - 1) / time.Second)
	return max(s, lo)
}
