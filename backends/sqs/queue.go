package sqs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/schemas"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
	"github.com/openhqm/openhqm/internal/batch"
)

// Queue is a backends.Queue on one SQS queue. All methods are safe for
// concurrent use. Every call is one or two SDK requests made by the caller's
// goroutine, except Ack: concurrent acks share DeleteMessageBatch requests,
// sent by goroutines that New starts and Close stops.
type Queue struct {
	opts   Options
	log    *slog.Logger
	client *awssqs.Client
	fifo   bool
	acks   *batch.Batcher[*backends.Delivery]

	closed  atomic.Bool
	closing context.Context // cancelled by Close: ends long polls in flight
	stop    context.CancelFunc

	dlqMu  sync.Mutex
	dlqURL string // resolved on first use

	heldMu sync.Mutex
	held   map[string]heldJob // receipt → job leased by this process, for OldestAge

	depthMu     sync.Mutex
	depthAt     time.Time
	depth       int64
	sinceSample atomic.Int64 // enqueues since the depth sample
	depthDirty  atomic.Bool  // a job left the queue since the depth sample
	busySince   time.Time    // first sample of the current non-empty stretch; zero when last seen empty
}

type heldJob struct {
	since time.Time // when the job was accepted
	until time.Time // its lease, as last known
}

var _ backends.Queue = (*Queue)(nil)

// New builds the SDK client and returns the queue. It makes no request: a
// queue or a dead-letter queue that is missing or unreachable shows in the
// first calls (Stats answers an error, so the process stays unready). It
// fails only on invalid options or an SDK configuration that cannot load.
func New(ctx context.Context, opts Options) (*Queue, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger.With("queue", opts.Name)
	load := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient()),
		config.WithLogger(sdkLogger{log}),
	}
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("%w: load AWS configuration: %w", errOptions, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: no region: set region, AWS_REGION, or use the queue's AWS URL", errOptions)
	}
	client := awssqs.NewFromConfig(cfg, func(o *awssqs.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		if opts.Protocol == ProtocolQuery {
			o.Protocol = awsquery.New(schemas.AmazonSQS)
		}
		if opts.Tune != nil {
			opts.Tune(o)
		}
	})
	q := &Queue{
		opts:   opts,
		log:    log,
		client: client,
		fifo:   strings.HasSuffix(queueName(opts.QueueURL), ".fifo"),
		held:   make(map[string]heldJob),
	}
	if strings.Contains(opts.DeadLetter, "://") {
		q.dlqURL = opts.DeadLetter
	}
	q.closing, q.stop = context.WithCancel(context.Background())
	// A DeleteMessageBatch takes ten entries; a worker finishes jobs in
	// bursts, and SQS requests take milliseconds, so four are in flight.
	q.acks = batch.New(batch.Options{MaxItems: 10, Senders: 4}, nil, q.sendAcks)
	return q, nil
}

// maxIdleConnsPerHost is how many idle connections to SQS the client
// keeps. The SDK keeps 10; a serve with more submits in flight, or a worker
// with more jobs finishing at once, would otherwise close and reopen (TLS
// included) connections at every burst.
const maxIdleConnsPerHost = 128

func httpClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = max(t.MaxIdleConns, maxIdleConnsPerHost)
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	})
}

// sdkLogger sends the SDK's own messages (such as a response body not
// drained after a request was cancelled) to the backend's logger at debug
// level: the errors that matter come back from the calls and are logged
// where they are handled. The SDK logs no request or response content
// unless ClientLogMode asks for it, which the backend never sets, so
// credentials and signatures never reach the log.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(class logging.Classification, format string, v ...any) {
	l.log.Debug("aws sdk: "+fmt.Sprintf(format, v...), "level", string(class))
}

func (q *Queue) errorf(format string, args ...any) error {
	return fmt.Errorf("sqs queue %q: "+format, append([]any{q.opts.Name}, args...)...)
}

// unavailable wraps an SDK error: nothing was done, or the outcome is
// unknown when ctx ended first.
func unavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return fmt.Errorf("%w: %w", backends.ErrUnavailable, err)
}

// settleErr classifies the error of a request on a delivery: a receipt
// handle SQS no longer honours means another delivery took the job.
func settleErr(ctx context.Context, err error) error {
	var invalid *types.ReceiptHandleIsInvalid
	var notInFlight *types.MessageNotInflight
	if errors.As(err, &invalid) || errors.As(err, &notInFlight) {
		return fmt.Errorf("%w: %w", backends.ErrLeaseLost, err)
	}
	return unavailable(ctx, err)
}

// encode returns the message body of job: the base64 of its wire encoding.
func encode(job *backends.Job) (string, error) {
	if n := base64.StdEncoding.EncodedLen(wire.Size(job)); n > MaxMessageSize {
		return "", fmt.Errorf("job %s encodes to %d bytes: %w", job.ID, n, ErrTooLarge)
	}
	return base64.StdEncoding.EncodeToString(wire.AppendJob(nil, job)), nil
}

func decode(body string) (*backends.Job, error) {
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: body is not base64: %w", wire.ErrMalformed, err)
	}
	return wire.DecodeJob(b)
}

// group sets the FIFO fields of a message to url.
func (q *Queue) group(url string, job *backends.Job) (groupID, dedupID *string) {
	if !strings.HasSuffix(queueName(url), ".fifo") {
		return nil, nil
	}
	g := job.Key
	if g == "" {
		g = job.ID
	}
	return aws.String(g), aws.String(job.ID)
}

// Enqueue sends the job and returns once SQS stored it. ErrTooLarge when its
// encoding exceeds MaxMessageSize, ErrFull at MaxDepth, ErrUnavailable
// (wrapped) when SQS cannot be reached or refuses, ErrClosed after Close.
func (q *Queue) Enqueue(ctx context.Context, job *backends.Job) error {
	if q.closed.Load() {
		return q.errorf("enqueue: %w", backends.ErrClosed)
	}
	body, err := encode(job)
	if err != nil {
		return q.errorf("enqueue: %w", err)
	}
	if q.opts.MaxDepth > 0 {
		d, err := q.approxDepth(ctx)
		if err != nil {
			return q.errorf("enqueue %s: %w", job.ID, err)
		}
		if d >= q.opts.MaxDepth {
			return q.errorf("enqueue %s: depth %d: %w", job.ID, d, backends.ErrFull)
		}
	}
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(q.opts.QueueURL), MessageBody: aws.String(body)}
	in.MessageGroupId, in.MessageDeduplicationId = q.group(q.opts.QueueURL, job)
	if _, err := q.client.SendMessage(ctx, in); err != nil {
		return q.errorf("enqueue %s: %w", job.ID, unavailable(ctx, err))
	}
	q.sinceSample.Add(1)
	return nil
}

// Receive long-polls for up to limit jobs (at most 10, SQS's batch) for at
// most a second, leasing each for Options.Lease. It returns no deliveries
// and a nil error when nothing arrived or ctx ended, ErrClosed after Close.
// A message that does not decode is moved to the dead-letter queue, since no
// worker could ever process it. The consumer name is not used: SQS leases
// per receive, not per consumer.
func (q *Queue) Receive(ctx context.Context, consumer string, limit int) ([]*backends.Delivery, error) {
	if q.closed.Load() {
		return nil, q.errorf("receive: %w", backends.ErrClosed)
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	limit = min(10, max(limit, 1))
	ctx, cancel := context.WithCancel(ctx)
	defer context.AfterFunc(q.closing, cancel)()
	defer cancel()
	// A long poll cut short by ctx may have taken messages that then stay
	// invisible for a lease, so near the caller's deadline Receive polls
	// short and waits out the rest itself.
	wait := int32(1)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 1500*time.Millisecond {
		wait = 0
	}
	lease := seconds(q.opts.Lease, 1)
	start := time.Now()
	out, err := q.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.opts.QueueURL),
		MaxNumberOfMessages:         int32(limit),
		WaitTimeSeconds:             wait,
		VisibilityTimeout:           lease,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	})
	switch {
	case err != nil && q.closed.Load():
		return nil, q.errorf("receive: %w", backends.ErrClosed)
	case err != nil && ctx.Err() != nil:
		return nil, nil
	case err != nil:
		return nil, q.errorf("receive: %w", unavailable(ctx, err))
	}
	if len(out.Messages) == 0 && wait == 0 {
		t := time.NewTimer(shortPollPause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		return nil, nil
	}
	leaseUntil := start.Add(time.Duration(lease) * time.Second) // the timeout starts after start
	ds := make([]*backends.Delivery, 0, len(out.Messages))
	for _, m := range out.Messages {
		attempt, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		d := &backends.Delivery{Attempt: max(attempt, 1), Receipt: aws.ToString(m.ReceiptHandle), LeaseUntil: leaseUntil}
		job, err := decode(aws.ToString(m.Body))
		if err != nil {
			q.log.Error("moving an undecodable message to the dead-letter queue", "message", aws.ToString(m.MessageId), "err", err)
			d.Job = &backends.Job{ID: aws.ToString(m.MessageId)}
			if err := q.deadLetter(ctx, d, aws.ToString(m.Body), backends.DeadLetter{Reason: "undecodable message: " + err.Error()}); err != nil {
				q.log.Error("dead-letter an undecodable message", "message", aws.ToString(m.MessageId), "err", err)
			}
			continue
		}
		d.Job = job
		ds = append(ds, d)
	}
	q.heldMu.Lock()
	for _, d := range ds {
		q.held[d.Receipt] = heldJob{since: d.Job.CreatedAt, until: d.LeaseUntil}
	}
	q.heldMu.Unlock()
	return ds, nil
}

// release forgets d as held by this process.
func (q *Queue) release(d *backends.Delivery) {
	q.heldMu.Lock()
	delete(q.held, d.Receipt)
	q.heldMu.Unlock()
}

// Ack deletes the message: the job is never delivered again. Concurrent
// acks share one DeleteMessageBatch. SQS may accept a receipt that another
// delivery superseded, so a lost lease is reported (ErrLeaseLost) only when
// SQS says so.
func (q *Queue) Ack(ctx context.Context, d *backends.Delivery) error {
	if q.closed.Load() {
		return q.errorf("ack: %w", backends.ErrClosed)
	}
	err := q.acks.Do(ctx, d)
	if errors.Is(err, backends.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return q.errorf("ack job %s: %w", d.Job.ID, err)
	}
	return err
}

func (q *Queue) sendAcks(ctx context.Context, calls []*batch.Call[*backends.Delivery]) {
	ds := make([]*backends.Delivery, len(calls))
	for i, c := range calls {
		ds[i] = c.Item
	}
	// Acks queued before Close are still sent: the client outlives it.
	for i, err := range q.ackBatch(ctx, ds) {
		calls[i].Err = err
	}
}

// AckBatch finishes several deliveries with DeleteMessageBatch, ten per
// request, and answers one error per delivery, in order (nil: deleted). A
// worker that finishes jobs in bursts saves a request per job with it.
func (q *Queue) AckBatch(ctx context.Context, ds []*backends.Delivery) []error {
	if q.closed.Load() {
		errs := make([]error, len(ds))
		for i := range errs {
			errs[i] = q.errorf("ack: %w", backends.ErrClosed)
		}
		return errs
	}
	return q.ackBatch(ctx, ds)
}

func (q *Queue) ackBatch(ctx context.Context, ds []*backends.Delivery) []error {
	errs := make([]error, len(ds))
	for start := 0; start < len(ds); start += 10 {
		chunk := ds[start:min(start+10, len(ds))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, d := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(start + i)), ReceiptHandle: aws.String(d.Receipt)}
		}
		out, err := q.client.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.opts.QueueURL), Entries: entries})
		if err != nil {
			for i, d := range chunk {
				errs[start+i] = q.errorf("ack job %s: %w", d.Job.ID, settleErr(ctx, err))
			}
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			if i < start || i >= start+len(chunk) {
				continue
			}
			cause := fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			if code := aws.ToString(f.Code); code == "ReceiptHandleIsInvalid" || code == "MessageNotInflight" {
				cause = fmt.Errorf("%w: %w", backends.ErrLeaseLost, cause)
			} else {
				cause = fmt.Errorf("%w: %w", backends.ErrUnavailable, cause)
			}
			errs[i] = q.errorf("ack job %s: %w", ds[i].Job.ID, cause)
		}
	}
	for i, d := range ds {
		if errs[i] == nil {
			q.release(d)
			q.depthDirty.Store(true)
		}
	}
	return errs
}

// Nack makes the job visible again after delay (rounded up to a second, at
// most 12h): the message stays in flight until then, and its next receive
// counts one more attempt.
func (q *Queue) Nack(ctx context.Context, d *backends.Delivery, delay time.Duration) error {
	if q.closed.Load() {
		return q.errorf("nack: %w", backends.ErrClosed)
	}
	_, err := q.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.opts.QueueURL), ReceiptHandle: aws.String(d.Receipt), VisibilityTimeout: seconds(delay, 0),
	})
	if err != nil {
		return q.errorf("nack job %s: %w", d.Job.ID, settleErr(ctx, err))
	}
	q.release(d)
	return nil
}

// Extend sets the message's visibility timeout to lease from now (rounded up
// to a second) and updates LeaseUntil. SQS ends a message's visibility 12h
// after its receive whatever the extensions.
func (q *Queue) Extend(ctx context.Context, d *backends.Delivery, lease time.Duration) error {
	if q.closed.Load() {
		return q.errorf("extend: %w", backends.ErrClosed)
	}
	s := seconds(lease, 1)
	now := time.Now()
	_, err := q.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(q.opts.QueueURL), ReceiptHandle: aws.String(d.Receipt), VisibilityTimeout: s,
	})
	if err != nil {
		return q.errorf("extend job %s: %w", d.Job.ID, settleErr(ctx, err))
	}
	d.LeaseUntil = now.Add(time.Duration(s) * time.Second)
	q.heldMu.Lock()
	if h, ok := q.held[d.Receipt]; ok {
		h.until = d.LeaseUntil
		q.held[d.Receipt] = h
	}
	q.heldMu.Unlock()
	return nil
}

// shortPollPause spaces short polls that found nothing, so a caller looping
// until its deadline does not spin.
const shortPollPause = 200 * time.Millisecond

// Dead-letter message attributes, readable with any SQS tool.
const (
	attrReason     = "openhqm-reason"
	attrAttempts   = "openhqm-attempts"
	attrDeadAt     = "openhqm-dead-at" // Unix milliseconds
	attrLastStatus = "openhqm-last-status"
	attrLastBody   = "openhqm-last-body"
)

// DeadLetter sends the job with dl's reason, attempts, time and last answer
// to the dead-letter queue, then deletes it from the queue. The last answer's
// body is cut to what fits beside the job in one message. When the delete
// fails after the send, the job is dead-lettered and also delivered again.
func (q *Queue) DeadLetter(ctx context.Context, d *backends.Delivery, dl backends.DeadLetter) error {
	if q.closed.Load() {
		return q.errorf("dead-letter: %w", backends.ErrClosed)
	}
	body, err := encode(d.Job)
	if err != nil {
		return q.errorf("dead-letter: %w", err)
	}
	if dl.Attempts == 0 {
		dl.Attempts = d.Attempt
	}
	if err := q.deadLetter(ctx, d, body, dl); err != nil {
		return err
	}
	return q.Ack(ctx, d)
}

// deadLetter sends body to the dead-letter queue with dl's attributes.
func (q *Queue) deadLetter(ctx context.Context, d *backends.Delivery, body string, dl backends.DeadLetter) error {
	url, err := q.deadLetterURL(ctx)
	if err != nil {
		return err
	}
	at := dl.At
	if at.IsZero() {
		at = time.Now()
	}
	attrs := map[string]types.MessageAttributeValue{
		attrReason:   {DataType: aws.String("String"), StringValue: aws.String(cut(dl.Reason, 1024))},
		attrAttempts: {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(dl.Attempts))},
		attrDeadAt:   {DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(at.UnixMilli(), 10))},
	}
	if dl.LastStatus != 0 {
		attrs[attrLastStatus] = types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(dl.LastStatus))}
	}
	// Attribute names, types and the other values take well under 2 KiB.
	if room := MaxMessageSize - len(body) - 2048; len(dl.LastBody) > 0 && room > 0 {
		attrs[attrLastBody] = types.MessageAttributeValue{DataType: aws.String("Binary"), BinaryValue: dl.LastBody[:min(len(dl.LastBody), room)]}
	}
	in := &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body), MessageAttributes: attrs}
	in.MessageGroupId, in.MessageDeduplicationId = q.group(url, d.Job)
	if _, err := q.client.SendMessage(ctx, in); err != nil {
		return q.errorf("dead-letter job %s: %w", d.Job.ID, unavailable(ctx, err))
	}
	return nil
}

// cut shortens s to at most n bytes.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// deadLetterURL resolves Options.DeadLetter once.
func (q *Queue) deadLetterURL(ctx context.Context) (string, error) {
	q.dlqMu.Lock()
	defer q.dlqMu.Unlock()
	if q.dlqURL != "" {
		return q.dlqURL, nil
	}
	out, err := q.client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(q.opts.DeadLetter)})
	if err != nil {
		var missing *types.QueueDoesNotExist
		if errors.As(err, &missing) {
			return "", q.errorf("dead-letter queue %q does not exist: %w: %w", q.opts.DeadLetter, backends.ErrUnavailable, err)
		}
		return "", q.errorf("resolve dead-letter queue %q: %w", q.opts.DeadLetter, unavailable(ctx, err))
	}
	q.dlqURL = aws.ToString(out.QueueUrl)
	return q.dlqURL, nil
}

// Close makes every later call answer ErrClosed and ends long polls in
// flight. Deliveries not acked come back after their lease.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	q.stop()
	q.acks.Close()
	return nil
}
