// Package testsqs serves an SQS-compatible API for tests and the bench:
// goaws v0.4.5 in the calling process, on a 127.0.0.1 port. It is a real
// server that the AWS SDK talks to over HTTP, never a mock of the SDK.
//
// goaws keeps its queues in package globals and builds queue URLs from one
// host and port, so a process runs at most one server at a time, and tests
// that use it must not run in parallel with each other. It speaks only the
// Query protocol of SQS's API: clients must select it (sqs.ProtocolQuery,
// or protocol = "query" in the configuration).
//
// Known differences from SQS, all in goaws: a ReceiveMessage's
// VisibilityTimeout is ignored (the queue's applies, so create queues with
// the lease as their visibility timeout), ApproximateNumberOfMessages counts
// in-flight messages too, and a receipt handle is void the moment its
// visibility timeout ends. ApproximateReceiveCount, which goaws never
// counts, is fixed here unless WithoutReceiveCounts says otherwise.
package testsqs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Admiral-Piett/goaws/app"
	"github.com/Admiral-Piett/goaws/app/gosqs"
	goawsrouter "github.com/Admiral-Piett/goaws/app/router"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/schemas"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
	"github.com/sirupsen/logrus"
)

// The account and region of the server's queues. goaws checks no
// signature, so any credentials do; these are the ones its clients here use.
const (
	AccountID = "100010001000"
	Region    = "us-east-1"
	AccessKey = "testsqs"
	SecretKey = "testsqs-secret"
)

// MaxMessageSize is the message size limit the server's queues take: SQS's.
const MaxMessageSize = 256 << 10

// Env is the environment of a process (openhqm serve or worker) that talks
// to the server through the AWS SDK's default credential chain: static
// credentials, and no shared configuration files or instance metadata to
// look up.
func Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Option configures a server.
type Option func(*options)

type options struct {
	addr          string
	countReceives bool
	tick          time.Duration
}

// WithAddr listens on addr instead of a free port of 127.0.0.1.
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithoutReceiveCounts leaves ApproximateReceiveCount as goaws answers it
// (always 1). The fix scans every message after each receive, which a
// backlog of a hundred thousand jobs (the bench) cannot afford.
func WithoutReceiveCounts() Option { return func(o *options) { o.countReceives = false } }

// Server is the process's goaws. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the API, for an SDK's BaseEndpoint.
	URL string

	stopOnce sync.Once
	stop     func()
}

var running atomic.Bool

// Start serves goaws for the test and stops it when the test ends. It
// fails the test when another server runs in the process.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := StartMain(opts...)
	if err != nil {
		t.Fatalf("testsqs: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartMain is Start for TestMain and commands: the caller must call Stop.
func StartMain(opts ...Option) (*Server, error) {
	o := options{addr: "127.0.0.1:0", countReceives: true, tick: 200 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if !running.CompareAndSwap(false, true) {
		return nil, errors.New("a goaws server already runs in this process; goaws keeps its state in globals")
	}
	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		running.Store(false)
		return nil, err
	}
	// goaws logs every request at info level; below warn logrus does not
	// even format them.
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.WarnLevel)
	host, port, _ := net.SplitHostPort(l.Addr().String())
	app.CurrentEnvironment.Host, app.CurrentEnvironment.Port = host, port // its queue URLs
	app.CurrentEnvironment.AccountID = AccountID
	app.CurrentEnvironment.QueueAttributeDefaults.VisibilityTimeout = 30
	app.CurrentEnvironment.QueueAttributeDefaults.MaximumMessageSize = MaxMessageSize

	h := goawsrouter.New()
	if o.countReceives {
		h = countReceives(h)
	}
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(l)
	}()
	// The periodic task makes messages whose visibility ended visible again.
	quit := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		gosqs.PeriodicTasks(o.tick, quit)
	}()
	s := &Server{URL: "http://" + l.Addr().String()}
	s.stop = func() {
		close(quit)
		<-ticked
		srv.Close()
		<-served
		running.Store(false)
	}
	return s, nil
}

// Stop ends the server and waits for its goroutines. Its queues stay in
// goaws's globals, so a later server of the same process still has them.
func (s *Server) Stop() { s.stopOnce.Do(s.stop) }

// countReceives fixes one defect of goaws v0.4.5: it answers
// ApproximateReceiveCount as its NumberOfReceives+1 but never increments
// NumberOfReceives, so every receive reports 1, where SQS counts each
// receive of a message. After each ReceiveMessage it counts one receive for
// every message that got a new receipt handle, and changes nothing else.
func countReceives(next http.Handler) http.Handler {
	var mu sync.Mutex
	handles := map[string]string{} // message id → receipt handle counted
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm() // before goaws reads the body
		next.ServeHTTP(w, r)
		if r.FormValue("Action") != "ReceiveMessage" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		app.SyncQueues.Lock()
		defer app.SyncQueues.Unlock()
		for _, q := range app.SyncQueues.Queues {
			for i := range q.Messages {
				m := &q.Messages[i]
				if m.ReceiptHandle != "" && handles[m.Uuid] != m.ReceiptHandle {
					handles[m.Uuid] = m.ReceiptHandle
					m.NumberOfReceives++
				}
			}
		}
	})
}

// Credentials are static credentials the server accepts.
var Credentials aws.CredentialsProvider = credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")

// Client is an SDK client on the server, speaking its Query protocol.
func (s *Server) Client() *awssqs.Client {
	return awssqs.New(awssqs.Options{
		Region: Region, BaseEndpoint: aws.String(s.URL), Credentials: Credentials,
	}, func(o *awssqs.Options) { o.Protocol = awsquery.New(schemas.AmazonSQS) }) // New sets JSON before options run
}

// CreateQueue creates the queue named name, with visibility as its
// visibility timeout (in whole seconds, at least one), and returns its URL.
// goaws ignores the timeout a receive asks for, so a queue whose consumers
// lease jobs for L must be created with visibility L.
func (s *Server) CreateQueue(ctx context.Context, name string, visibility time.Duration) (string, error) {
	secs := max(int((visibility+time.Second-1)/time.Second), 1)
	out, err := s.Client().CreateQueue(ctx, &awssqs.CreateQueueInput{
		QueueName:  aws.String(name),
		Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(secs)},
	})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// CreateQueues creates the queue named name and its dead-letter queue
// (name + "-dlq") with CreateQueue, failing the test on error, and returns
// the queue's URL.
func (s *Server) CreateQueues(t testing.TB, name string, visibility time.Duration) string {
	t.Helper()
	var url string
	for _, n := range []string{name + "-dlq", name} {
		u, err := s.CreateQueue(context.Background(), n, visibility)
		if err != nil {
			t.Fatalf("testsqs: %v", err)
		}
		url = u
	}
	return url
}
