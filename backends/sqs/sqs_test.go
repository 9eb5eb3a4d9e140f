package sqs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Admiral-Piett/goaws/app"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
	"github.com/openhqm/openhqm/backends/wire"
)

var nameSeq atomic.Int64

func queueNameFor(t *testing.T) string {
	return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, nameSeq.Add(1))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// receiveN receives until n deliveries arrived or within passes.
// receiveWithin bounds the wait for one delivery: long, because goaws
// answers slowly on a busy machine; receiveN returns as soon as it has them.
const receiveWithin = 30 * time.Second

func receiveN(t *testing.T, q *Queue, n int, within time.Duration) []*backends.Delivery {
	t.Helper()
	var out []*backends.Delivery
	for deadline := time.Now().Add(within); len(out) < n && time.Now().Before(deadline); {
		ds, err := q.Receive(ctxT(t), "w", n-len(out))
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		out = append(out, ds...)
	}
	if len(out) != n {
		t.Fatalf("received %d deliveries, want %d", len(out), n)
	}
	return out
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		url, region, deadLetter string
	}{
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/jobs", "eu-west-1", "jobs-dlq"},
		{"https://eu-central-1.queue.amazonaws.com/123456789012/jobs.fifo", "eu-central-1", "jobs-dlq.fifo"},
		{"http://localhost:4100/100010001000/jobs", "", "jobs-dlq"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			o, err := Options{QueueURL: tc.url}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			got := []string{regionOf(tc.url), o.DeadLetter}
			if d := cmp.Diff([]string{tc.region, tc.deadLetter}, got); d != "" {
				t.Errorf("region, dead letter (-want +got):\n%s", d)
			}
		})
	}
	for _, bad := range []Options{{}, {QueueURL: "jobs"}, {QueueURL: "https://sqs.eu-west-1.amazonaws.com/"}, {QueueURL: "https://h/1/jobs", DeadLetter: "jobs"}, {QueueURL: "https://h/1/jobs", Protocol: "xml"}} {
		if _, err := New(context.Background(), bad); !errors.Is(err, errOptions) {
			t.Errorf("New(%+v) = %v, want invalid options", bad, err)
		}
	}
}

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		lo   int32
		want int32
	}{
		{0, 0, 0}, {0, 1, 1}, {300 * time.Millisecond, 1, 1}, {time.Second, 1, 1},
		{1001 * time.Millisecond, 0, 2}, {48 * time.Hour, 1, 43200},
	} {
		if got := seconds(tc.d, tc.lo); got != tc.want {
			t.Errorf("seconds(%v, %d) = %d, want %d", tc.d, tc.lo, got, tc.want)
		}
	}
}

// A job whose message would exceed SQS's limit is refused before anything
// is sent, with an error that names the limit; one just under it goes
// through whole.
func TestTooLarge(t *testing.T) {
	q := newQueue(t, testOptions(createQueue(t, queueNameFor(t), time.Minute)))
	job := backendtest.NewJob("q", 1)
	job.Body = nil
	job.Body = make([]byte, MaxMessageSize/4*3-wire.Size(job)) // base64 of exactly MaxMessageSize
	if err := q.Enqueue(ctxT(t), job); err != nil {
		t.Fatalf("Enqueue at the limit: %v", err)
	}
	d := receiveN(t, q, 1, receiveWithin)[0]
	if diff := cmp.Diff(job, d.Job, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("job at the limit (-sent +received):\n%s", diff)
	}

	job = backendtest.NewJob("q", 2)
	job.Body = make([]byte, MaxMessageSize)
	err := q.Enqueue(ctxT(t), job)
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, backends.ErrTooLarge) {
		t.Fatalf("Enqueue of a 256 KiB body = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "256 KiB") {
		t.Errorf("error %q does not name the limit", err)
	}
}

// On a FIFO queue a message's group is the job's key (its id when it has
// none) and its deduplication id the job's id. Read from the server's state:
// goaws hides a FIFO message it skips for a locked group until its
// visibility timeout ends, so the wait of a second job of one key cannot be
// watched through it.
func TestFIFOGroupsByKey(t *testing.T) {
	name := queueNameFor(t) + ".fifo"
	q := newQueue(t, testOptions(createQueue(t, name, time.Minute)))
	a, b := backendtest.NewJob("q", 1), backendtest.NewJob("q", 2)
	a.Key = "tenant-1"
	for _, j := range []*backends.Job{a, b} {
		if err := q.Enqueue(ctxT(t), j); err != nil {
			t.Fatal(err)
		}
	}
	type ids struct{ Group, Dedup string }
	var got []ids
	app.SyncQueues.RLock()
	for _, m := range app.SyncQueues.Queues[name].Messages {
		got = append(got, ids{m.GroupID, m.DeduplicationID})
	}
	app.SyncQueues.RUnlock()
	want := []ids{{"tenant-1", a.ID}, {b.ID, b.ID}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored group and deduplication ids (-want +got):\n%s", d)
	}
	if d := receiveN(t, q, 1, receiveWithin)[0]; d.Job.ID != a.ID {
		t.Errorf("first delivery is job %s, want a", d.Job.ID)
	}
}

// A dead letter carries the job in the same encoding and its reason,
// attempts, time and last answer as message attributes.
func TestDeadLetterAttributes(t *testing.T) {
	name := queueNameFor(t)
	q := newQueue(t, testOptions(createQueue(t, name, time.Minute)))
	job := backendtest.NewJob("q", 1)
	if err := q.Enqueue(ctxT(t), job); err != nil {
		t.Fatal(err)
	}
	d := receiveN(t, q, 1, receiveWithin)[0]
	at := time.UnixMilli(1700000000123)
	dl := backends.DeadLetter{Reason: "upstream answered 500", Attempts: 5, At: at, LastStatus: 500, LastBody: []byte("boom\x00")}
	if err := q.DeadLetter(ctxT(t), d, dl); err != nil {
		t.Fatal(err)
	}
	m := receiveDeadLetter(t, name)
	got, err := decode(aws.ToString(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(job, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("dead-lettered job (-sent +stored):\n%s", diff)
	}
	attrs := map[string]string{}
	for k, v := range m.MessageAttributes {
		attrs[k] = aws.ToString(v.StringValue) + string(v.BinaryValue)
	}
	want := map[string]string{
		attrReason: dl.Reason, attrAttempts: "5", attrDeadAt: strconv.FormatInt(at.UnixMilli(), 10),
		attrLastStatus: "500", attrLastBody: "boom\x00",
	}
	if diff := cmp.Diff(want, attrs); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
}

// A message that is not a job never reaches a worker: it is moved to the
// dead-letter queue with the reason.
func TestUndecodableMessageIsDeadLettered(t *testing.T) {
	name := queueNameFor(t)
	url := createQueue(t, name, time.Minute)
	q := newQueue(t, testOptions(url))
	if _, err := adminClient().SendMessage(ctxT(t), &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("not a job")}); err != nil {
		t.Fatal(err)
	}
	ds, err := q.Receive(ctxT(t), "w", 10)
	if err != nil || len(ds) != 0 {
		t.Fatalf("Receive = %d deliveries, %v; want none", len(ds), err)
	}
	m := receiveDeadLetter(t, name)
	if r := aws.ToString(m.MessageAttributes[attrReason].StringValue); !strings.HasPrefix(r, "undecodable message") {
		t.Errorf("reason %q", r)
	}
	if b := aws.ToString(m.Body); b != "not a job" {
		t.Errorf("dead-lettered body %q, want the original", b)
	}
}

// receiveDeadLetter reads the one message of name's dead-letter queue.
func receiveDeadLetter(t *testing.T, name string) types.Message {
	t.Helper()
	c := adminClient()
	u, err := c.GetQueueUrl(ctxT(t), &awssqs.GetQueueUrlInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(ctxT(t), &awssqs.ReceiveMessageInput{
		QueueUrl: u.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("dead-letter queue holds %d messages, want 1", len(out.Messages))
	}
	return out.Messages[0]
}

// MaxDepth refuses at the bound and accepts again once a job is finished.
// (The conformance case that also counts leased jobs cannot run on goaws;
// see goawsDefects.)
func TestMaxDepth(t *testing.T) {
	opts := testOptions(createQueue(t, queueNameFor(t), time.Minute))
	opts.MaxDepth = 2
	q := newQueue(t, opts)
	for i := range 2 {
		if err := q.Enqueue(ctxT(t), backendtest.NewJob("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Enqueue(ctxT(t), backendtest.NewJob("q", 3)); !errors.Is(err, backends.ErrFull) {
		t.Fatalf("Enqueue at MaxDepth = %v, want ErrFull", err)
	}
	d := receiveN(t, q, 1, receiveWithin)[0]
	if err := q.Ack(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctxT(t), backendtest.NewJob("q", 4)); err != nil {
		t.Fatalf("Enqueue after a job finished: %v", err)
	}
}

// Jobs outlive the Queue value: a new one delivers what a closed one left,
// the held job again after its lease with its attempt counted. (The
// conformance case acks later than goaws honours; see goawsDefects.)
func TestCloseKeepsJobs(t *testing.T) {
	url := createQueue(t, queueNameFor(t), time.Second)
	opts := testOptions(url)
	opts.Lease = time.Second
	q := newQueue(t, opts)
	a, b := backendtest.NewJob("q", 1), backendtest.NewJob("q", 2)
	for _, j := range []*backends.Job{a, b} {
		if err := q.Enqueue(ctxT(t), j); err != nil {
			t.Fatal(err)
		}
	}
	held := receiveN(t, q, 1, receiveWithin)[0]
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Receive(ctxT(t), "w", 1); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Receive after Close = %v, want ErrClosed", err)
	}
	if err := q.Enqueue(ctxT(t), a); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
	}

	q2 := newQueue(t, opts)
	got := map[string]int{}
	for len(got) < 2 {
		d := receiveN(t, q2, 1, 10*time.Second)[0]
		got[d.Job.ID] = d.Attempt
		if err := q2.Ack(ctxT(t), d); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{a.ID: 1, b.ID: 1, held.Job.ID: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("job → attempt (-want +got):\n%s", diff)
	}
}

// A dead-letter queue that does not exist makes Stats fail, so a process
// whose readiness asks Stats stays unready and says why.
func TestMissingDeadLetterQueue(t *testing.T) {
	opts := testOptions(createQueue(t, queueNameFor(t), time.Minute))
	opts.DeadLetter = "no-such-queue"
	q := newQueue(t, opts)
	_, err := q.Stats(ctxT(t))
	if !errors.Is(err, backends.ErrUnavailable) || !strings.Contains(err.Error(), "no-such-queue") {
		t.Errorf("Stats = %v, want ErrUnavailable naming the queue", err)
	}
}

// An unreachable endpoint answers ErrUnavailable, not a hang.
func TestUnreachable(t *testing.T) {
	opts := testOptions("http://127.0.0.1:1/100010001000/jobs")
	opts.Endpoint = "http://127.0.0.1:1"
	q := newQueue(t, opts)
	if err := q.Enqueue(ctxT(t), backendtest.NewJob("q", 1)); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Enqueue = %v, want ErrUnavailable", err)
	}
	if _, err := q.Stats(ctxT(t)); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Stats = %v, want ErrUnavailable", err)
	}
	if _, err := q.Receive(ctxT(t), "w", 1); !errors.Is(err, backends.ErrUnavailable) {
		t.Errorf("Receive = %v, want ErrUnavailable", err)
	}
}

// Base64 keeps every byte of a job through SQS's text-only bodies.
func TestBodyIsBase64OfWire(t *testing.T) {
	job := backendtest.NewJob("q", 1)
	body, err := encode(job)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != string(wire.AppendJob(nil, job)) {
		t.Errorf("body is not the base64 of the wire encoding")
	}
}

// AckBatch finishes more jobs than one request takes.
func TestAckBatch(t *testing.T) {
	q := newQueue(t, testOptions(createQueue(t, queueNameFor(t), time.Minute)))
	const n = 12
	for i := range n {
		if err := q.Enqueue(ctxT(t), backendtest.NewJob("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	ds := receiveN(t, q, n, 10*time.Second)
	if diff := cmp.Diff(make([]error, n), q.AckBatch(ctxT(t), ds), cmpopts.EquateErrors()); diff != "" {
		t.Errorf("AckBatch errors (-want +got):\n%s", diff)
	}
	s, err := q.Stats(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Depth != 0 {
		t.Errorf("depth after AckBatch = %d, want 0", s.Depth)
	}
}

// Concurrent acks share DeleteMessageBatch requests.
func TestConcurrentAcksShareRequests(t *testing.T) {
	var mu sync.Mutex
	ops := map[string]int{}
	opts := testOptions(createQueue(t, queueNameFor(t), time.Minute))
	opts.Tune = func(o *awssqs.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("count", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				mu.Lock()
				ops[awsmiddleware.GetOperationName(ctx)]++
				mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		})
	}
	q := newQueue(t, opts)
	const n = 30
	for i := range n {
		if err := q.Enqueue(ctxT(t), backendtest.NewJob("q", i)); err != nil {
			t.Fatal(err)
		}
	}
	ds := receiveN(t, q, n, 10*time.Second)
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() {
			if err := q.Ack(ctxT(t), d); err != nil {
				t.Errorf("Ack: %v", err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	single, batched := ops["DeleteMessage"], ops["DeleteMessageBatch"]
	mu.Unlock()
	if single != 0 || batched < n/10 || batched >= n {
		t.Errorf("%d acks made %d DeleteMessage and %d DeleteMessageBatch requests; want batches only, fewer than acks", n, single, batched)
	}
	if s, err := q.Stats(ctxT(t)); err != nil || s.Depth != 0 {
		t.Errorf("after the acks: %+v, %v; want empty", s, err)
	}
}
