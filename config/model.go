package config

import (
	"net/url"
	"regexp"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/itchyny/gojq"
)

// Config is one validated generation of the configuration. It is read-only once
// Load returns it: every field may be read from any goroutine without locking,
// and nothing may be written. Durations, sizes, URLs and references are already
// resolved, and defaults are filled in.
type Config struct {
	Server    Server
	Endpoints map[string]*Endpoint // by name
	Queues    map[string]*Queue    // by name
	Results   Results
	// Routes in declaration order (file order across a directory, files sorted by
	// name). Route.Index is the position in this slice.
	Routes    []*Route
	SubmitAPI *SubmitAPI // nil when the submit_api block is absent
	Worker    Worker
	Telemetry Telemetry

	// Digest is the hex SHA-256 of the source files (names and contents), so a
	// reload of identical content can be recognised and skipped.
	Digest string
	// Files are the source file names the configuration was loaded from; empty
	// for configurations built from the environment or the embedded default.
	Files []string
}

// Server holds the settings of the inbound listeners.
type Server struct {
	Listen      string // default ":8000"
	AdminListen string // empty: admin paths are served on Listen under /-/
	// AdminToken is the bearer introspection and control pages require on
	// Listen; empty: they are not served there (probes and metrics are).
	AdminToken string
	// MaxConnections bounds the open connections of each listener; 0: the
	// server derives it from the open-file limit at start.
	MaxConnections int
	MaxBodySize    int64 // bytes, default 10 MiB
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
}

// AuthType names a kind of outbound (endpoint) or inbound (client) credential.
type AuthType string

const (
	AuthNone   AuthType = "none"
	AuthBearer AuthType = "bearer"
	AuthAPIKey AuthType = "api_key"
	AuthBasic  AuthType = "basic"
	AuthHeader AuthType = "header"
)

// Endpoint is an upstream application openhqm forwards to.
type Endpoint struct {
	Name           string
	URL            *url.URL      // scheme http or https, host[:port], optional base path
	Timeout        time.Duration // default 30s
	MaxConcurrency int           // 0: unlimited
	MaxPending     int           // requests allowed to wait for a slot; default 4×MaxConcurrency
	Headers        []Header      // static headers added to every request, sorted by name
	Auth           Auth
	CircuitBreaker *CircuitBreaker // nil: none
	// Adaptive moves the concurrency limit under MaxConcurrency with the
	// app's latency; nil: the limit is MaxConcurrency.
	Adaptive *AdaptiveConcurrency
	Range    hcl.Range // the block's definition, for diagnostics
}

// AdaptiveConcurrency is a gradient limit: while the app answers within
// Tolerance times its unloaded latency the limit grows toward
// MaxConcurrency; beyond, or on timeouts and 429/503 answers, it comes down
// toward Min.
type AdaptiveConcurrency struct {
	Min       int     // default 1
	Tolerance float64 // default 1.5
}

// CircuitBreaker stops openhqm from hammering an app that is down: after
// Failures consecutive connect, timeout or 5xx failures it opens; sync
// requests are then refused at once and jobs wait; after OpenFor one probe
// decides.
type CircuitBreaker struct {
	Failures int           // default 5
	OpenFor  time.Duration // default 5s
	Probe    string        // path of a GET used as the probe; "": one real request or job
}

// Header is one header name and value.
type Header struct {
	Name  string // canonical form (textproto.CanonicalMIMEHeaderKey)
	Value string
}

// Auth is an outbound credential injected toward the app.
type Auth struct {
	Type     AuthType // AuthNone when absent
	Token    string   // bearer, api_key, header
	Header   string   // api_key (default "X-API-Key") and header
	Username string   // basic
	Password string   // basic
}

// QueueBackend names a queue implementation.
type QueueBackend string

const (
	BackendMemory QueueBackend = "memory"
	BackendRedis  QueueBackend = "redis"
	BackendKafka  QueueBackend = "kafka"
	BackendSQS    QueueBackend = "sqs"
)

// Queue is a named job queue.
type Queue struct {
	Name          string
	Backend       QueueBackend
	Redis         *RedisQueue   // set when Backend is redis
	Kafka         *KafkaQueue   // set when Backend is kafka
	SQS           *SQSQueue     // set when Backend is sqs
	MaxDepth      int64         // default 100000; above it submits get 503
	Lease         time.Duration // default 60s
	DeadLetter    string        // stream/topic name, or SQS queue name or URL; default "<stream, topic or SQS queue>-dlq"
	DeadLetterMax int64         // bound of the dead-letter stream; default 10000
	Range         hcl.Range
}

// RedisQueue holds the Redis Streams settings of a queue.
type RedisQueue struct {
	RedisConn
	Stream string // default "openhqm-requests"
	Group  string // default "openhqm-workers"
	Shards int    // streams the queue is split over; default 1
	// KeyHeader is the request header whose value picks a job's shard;
	// empty: shards in turn.
	KeyHeader string
}

// KafkaQueue holds the Kafka settings of a queue.
type KafkaQueue struct {
	Brokers    []string // host:port
	Topic      string   // default "openhqm-requests"
	Group      string   // default "openhqm-workers"
	RetryTopic string   // default Topic + "-retry"
	Version    string   // Kafka protocol version, e.g. "3.6.0"; default sarama's
	KeyHeader  string   // request header whose value is the partition key; empty: the route name
	TLS        *TLS     // nil: plaintext
	SASL       *SASL    // nil: no SASL
}

// SQSQueue holds the Amazon SQS settings of a queue. Credentials are not
// part of the configuration: the AWS SDK's default chain finds them.
type SQSQueue struct {
	QueueURL  string // the queue's URL
	Region    string // default the region of an AWS QueueURL; "" leaves it to the SDK
	Endpoint  string // base URL of an SQS-compatible server; "" for AWS
	Protocol  string // "json" (default) or "query"
	KeyHeader string // request header whose value is a FIFO queue's message group; empty: the route name
}

// TLS configures a TLS client connection.
type TLS struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// SASL configures SASL authentication toward Kafka.
type SASL struct {
	Mechanism string // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	Username  string
	Password  string
}

// Results configures where job results are kept.
type Results struct {
	Backend    QueueBackend  // memory | redis
	TTL        time.Duration // counted from completion; default 1h
	MaxEntries int           // memory backend bound; default 100000
	RedisURL   string        // Redis.URL, kept for callers of earlier releases
	Redis      *RedisConn    // set when Backend is redis
	Prefix     string        // Redis key prefix; default "openhqm:"
	// IdempotencyWindow is how long an Idempotency-Key stays bound to its
	// job; default 24h.
	IdempotencyWindow time.Duration
	// MaxBodySize bounds a stored answer, in bytes; default 10 MiB. A
	// larger answer fails the job instead of becoming a huge stored value.
	MaxBodySize int64
}

// Mode says how a route handles a request.
type Mode string

const (
	ModeSync  Mode = "sync"
	ModeAsync Mode = "async"
	ModeAuto  Mode = "auto" // sync unless the client sends Prefer: respond-async
)

// Route maps matching requests to an endpoint, synchronously or as jobs.
type Route struct {
	Name     string
	Index    int // declaration order, the last tie-breaker
	Priority int // higher wins among otherwise equal matches; default 0
	Match    Match
	Mode     Mode
	Endpoint string // name of an entry of Config.Endpoints
	Queue    string // name of an entry of Config.Queues; set for async and auto routes
	Retry    Retry
	// Idempotent says replaying the request is safe even after an ambiguous
	// failure (timeout, connection reset after the request was sent).
	Idempotent bool
	Timeout    time.Duration // the route's own timeout, else the endpoint's
	// OnOverload says what a sync (or auto) request does when it finds its
	// endpoint saturated or its breaker open: answer 503, or become a job.
	OnOverload OnOverload
	ClientAuth *ClientAuth // nil: anyone may call
	RateLimit  *RateLimit  // nil: no limit
	Transform  *Transform  // nil: the body is forwarded unchanged
	Range      hcl.Range
}

// Match says which requests a route takes. Empty fields match anything.
type Match struct {
	Methods    []string // upper case; empty: any method
	Hosts      []string // lower case, without port; empty: any host
	Path       string   // exact path, or a template when PathSegments is set
	PathPrefix string   // "/api/orders" matches "/api/orders" and "/api/orders/..."
	// PathSegments is the parsed template of Path when it contains {name}
	// placeholders; nil for exact paths. A placeholder segment matches one
	// non-empty path segment.
	PathSegments []Segment
	Headers      []HeaderMatch // all must match
	// JQ, when set, is a jq expression evaluated on the JSON request body; the
	// route matches when it yields true. A body that is not JSON does not match.
	JQ *JQ
}

// Segment is one part of a path template.
type Segment struct {
	Literal string // when Param is empty
	Param   string // placeholder name
}

// HeaderMatch matches one request header.
type HeaderMatch struct {
	Name  string         // canonical form
	Value string         // exact value, when Regex is nil
	Regex *regexp.Regexp // set when the value was written as "~regex" (anchored)
}

// JQ is a compiled jq expression with its source text.
type JQ struct {
	Source string
	Code   *gojq.Code
}

// Transform rewrites a request from its JSON body before it is forwarded.
type Transform struct {
	Body    *JQ            // replaces the body with the expression's result
	Headers map[string]*JQ // header name (canonical) → expression
	Query   map[string]*JQ // query parameter → expression
}

// OnOverload is a route's answer to a saturated endpoint.
type OnOverload string

const (
	OverloadReject OnOverload = "reject" // 503 + Retry-After (the default)
	OverloadQueue  OnOverload = "queue"  // accepted as a job: 202
)

// RetryOn names a class of failure that is retried.
type RetryOn string

const (
	RetryConnect RetryOn = "connect"
	RetryTimeout RetryOn = "timeout"
	Retry5xx     RetryOn = "5xx"
	Retry429     RetryOn = "429"
)

// Retry is the retry policy of a route's jobs.
type Retry struct {
	Attempts int           // total attempts including the first; default 3, 1 disables retries
	Backoff  string        // exponential | constant; default exponential
	Initial  time.Duration // default 1s
	Max      time.Duration // default 1m
	On       []RetryOn     // default connect, timeout, 5xx, 429
}

// ClientAuth says who may call a route and read its jobs' results.
type ClientAuth struct {
	Type   AuthType // bearer | api_key | none
	Header string   // api_key: header carrying the key; default "X-API-Key"
	Tokens []string // accepted credentials; a token is also the caller's principal
}

// RateLimit is a token bucket per route.
type RateLimit struct {
	RequestsPerSecond float64
	Burst             int // default ceil(RequestsPerSecond)
}

// SubmitAPI configures the original OpenHQM JSON API under /api/v1.
type SubmitAPI struct {
	Endpoint   string // default endpoint of submits
	Queue      string
	Retry      Retry
	ClientAuth *ClientAuth
}

// Worker configures the worker pool.
type Worker struct {
	Embedded    bool          // serve runs the pool in-process; default true
	Concurrency int           // default 16
	BatchSize   int           // default 10
	Drain       time.Duration // default 30s
	Listen      string        // admin listener of `openhqm worker`; default ":9090"
	Queues      []string      // queues consumed; empty: every queue
}

// Telemetry configures logs and metrics.
type Telemetry struct {
	LogLevel  string // debug | info | warn | error; default info
	LogFormat string // json | text; default json
	Metrics   bool   // default true
}
