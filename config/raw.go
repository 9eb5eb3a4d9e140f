package config

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
)

// The raw structs mirror the HCL language one to one. Only fields with an hcl
// tag are part of the language; each also carries a one-sentence doc tag
// (with its default) that the schema generator publishes. Attribute fields
// have the Go type their value decodes to; durations and sizes are strings.
// The embedded rawMeta is bookkeeping for diagnostics and not part of the
// language.

// RawRoot returns a pointer to the zero value of the raw root struct, for
// reflection by the schema generator. Tags: `hcl:"name"` (required attribute),
// `hcl:"name,optional"`, `hcl:"name,block"` (a pointer: at most one block; a
// slice: any number), `hcl:"name,label"`; `doc:"..."` describes the field.
func RawRoot() any { return &rawRoot{} }

type rawRoot struct {
	rawMeta
	Server    *rawServer     `hcl:"server,block" doc:"Settings of the inbound listeners; at most one per configuration."`
	Endpoints []*rawEndpoint `hcl:"endpoint,block" doc:"An upstream application openhqm forwards to, named by its label."`
	Queues    []*rawQueue    `hcl:"queue,block" doc:"A named job queue that async routes and the submit API write to."`
	Results   *rawResults    `hcl:"results,block" doc:"Where job results are kept; default an in-memory store."`
	Routes    []*rawRoute    `hcl:"route,block" doc:"Maps matching requests to an endpoint, synchronously or as jobs; tried in precedence order."`
	SubmitAPI *rawSubmitAPI  `hcl:"submit_api,block" doc:"Enables the original OpenHQM JSON API (POST /api/v1/submit, GET /api/v1/status|response/{id})."`
	Worker    *rawWorker     `hcl:"worker,block" doc:"The worker pool that replays jobs against endpoints."`
	Telemetry *rawTelemetry  `hcl:"telemetry,block" doc:"Logging and metrics settings."`
}

type rawServer struct {
	rawMeta
	Listen         string `hcl:"listen,optional" doc:"Address of the main listener as host:port; default \":8000\"."`
	AdminListen    string `hcl:"admin_listen,optional" doc:"Separate address for /-/, /health and /metrics; default empty, meaning they are served on listen."`
	AdminToken     string `hcl:"admin_token,optional" doc:"Bearer token that introspection and control (/-/config, /-/routes, POST /-/reload) require on the main listener (write it with env() or file()); default empty: without it and without admin_listen they are not served at all. Probes and /metrics stay open."`
	MaxConnections int    `hcl:"max_connections,optional" doc:"Most connections open at once on each listener; the newest above it is answered 503 and closed. Default 0: derived from the open-file limit, (soft RLIMIT_NOFILE - 256) / 2 (256 descriptors kept for files, backends and listeners, and one connection to the app for each client connection), at least 64 and at most 10000."`
	MaxBodySize    string `hcl:"max_body_size,optional" doc:"Largest accepted request body, a byte count or a size such as \"10MiB\"; default \"10MiB\"."`
	ReadTimeout    string `hcl:"read_timeout,optional" doc:"Longest time to read a whole request; default \"30s\"."`
	WriteTimeout   string `hcl:"write_timeout,optional" doc:"Longest time to write a response, \"0s\" for none; default \"0s\" (route timeouts govern)."`
	IdleTimeout    string `hcl:"idle_timeout,optional" doc:"How long an idle keep-alive connection is kept open; default \"90s\"."`
}

type rawEndpoint struct {
	rawMeta
	Name           string            `hcl:"name,label" doc:"The endpoint's name, referenced by routes and the submit API."`
	URL            string            `hcl:"url" doc:"Base URL of the app, http or https with a host; required."`
	Timeout        string            `hcl:"timeout,optional" doc:"Deadline of one request to the app; default \"30s\"."`
	MaxConcurrency int               `hcl:"max_concurrency,optional" doc:"Most requests in flight to the app at once; default 0, unlimited."`
	MaxPending     int               `hcl:"max_pending,optional" doc:"Requests allowed to wait for a slot before 503; default 4 × max_concurrency."`
	Headers        map[string]string `hcl:"headers,optional" doc:"Static headers added to every request toward the app; default none."`
	Auth           *rawAuth          `hcl:"auth,block" doc:"Outbound credentials injected toward the app; default none."`
	CircuitBreaker *rawBreaker       `hcl:"circuit_breaker,block" doc:"Stops openhqm from hammering an app that is down: sync requests answer 503 at once (or spill, with on_overload = \"queue\") and jobs wait, uncharged, until a probe succeeds; default none."`
	Adaptive       *rawAdaptive      `hcl:"adaptive_concurrency,block" doc:"Moves the concurrency limit between min and max_concurrency with the app's latency, so that worker replicas back off together from a slowing app without coordination; needs max_concurrency; default none: the limit is max_concurrency."`
}

type rawAdaptive struct {
	rawMeta
	Min       int     `hcl:"min,optional" doc:"Lowest the limit goes; default 1."`
	Tolerance float64 `hcl:"tolerance,optional" doc:"How many times its unloaded latency the app may take before the limit comes down, at least 1; default 1.5."`
}

type rawBreaker struct {
	rawMeta
	Failures int    `hcl:"failures,optional" doc:"Consecutive connect, timeout or 5xx failures that open the breaker; default 5."`
	OpenFor  string `hcl:"open_for,optional" doc:"How long the breaker stays open before one probe decides; default \"5s\"."`
	Probe    string `hcl:"probe,optional" doc:"Path of a GET sent as the probe (under the endpoint's URL path); default none: the oldest waiting job, or the next request, probes."`
}

type rawAuth struct {
	rawMeta
	Type     string `hcl:"type" doc:"Kind of credential: bearer, api_key, basic, header or none; required."`
	Token    string `hcl:"token,optional" doc:"The token or key, for bearer, api_key and header."`
	Header   string `hcl:"header,optional" doc:"Header carrying the credential, for api_key (default \"X-API-Key\") and header (required)."`
	Username string `hcl:"username,optional" doc:"User name, for basic."`
	Password string `hcl:"password,optional" doc:"Password, for basic."`
}

type rawQueue struct {
	rawMeta
	Name          string         `hcl:"name,label" doc:"The queue's name, referenced by routes, the submit API and worker.queues."`
	Backend       string         `hcl:"backend,optional" doc:"Implementation: memory, redis, kafka or sqs; default \"memory\"."`
	Redis         *rawRedisQueue `hcl:"redis,block" doc:"Redis Streams settings; required when backend is redis."`
	Kafka         *rawKafka      `hcl:"kafka,block" doc:"Kafka settings; required when backend is kafka."`
	SQS           *rawSQS        `hcl:"sqs,block" doc:"Amazon SQS settings; required when backend is sqs. Credentials come from the AWS SDK's default chain (environment, shared config, web identity)."`
	MaxDepth      int64          `hcl:"max_depth,optional" doc:"Jobs allowed to wait before submits get 503 + Retry-After; default 100000."`
	Lease         string         `hcl:"lease,optional" doc:"How long a worker holds a job before it is redelivered, at least 1s and longer than the timeout of every route and submit_api using the queue; default \"60s\"."`
	DeadLetter    string         `hcl:"dead_letter,optional" doc:"Stream, topic or SQS queue receiving failed jobs (for SQS a queue name in the queue's account and region, or a queue URL); default the stream, topic or SQS queue name + \"-dlq\" (before \".fifo\" for a FIFO queue)."`
	DeadLetterMax int64          `hcl:"dead_letter_max,optional" doc:"Bound of the dead-letter stream; default 10000."`
}

type rawRedisQueue struct {
	rawMeta
	URL         string            `hcl:"url,optional" doc:"Redis URL (redis://, rediss:// or unix://); exactly one of url, sentinel and cluster."`
	Sentinel    *rawRedisSentinel `hcl:"sentinel,block" doc:"A primary and its replicas found through Redis Sentinel; exactly one of url, sentinel and cluster."`
	Cluster     *rawRedisCluster  `hcl:"cluster,block" doc:"A Redis Cluster; exactly one of url, sentinel and cluster."`
	TLS         *rawTLS           `hcl:"tls,block" doc:"TLS toward Redis (a rediss:// url also turns it on); default plaintext."`
	Stream      string            `hcl:"stream,optional" doc:"Stream name; default \"openhqm-requests\"."`
	Group       string            `hcl:"group,optional" doc:"Consumer group; default \"openhqm-workers\"."`
	Shards      int64             `hcl:"shards,optional" doc:"Streams the queue is split over, each under its own hash tag so that a cluster spreads them over its primaries; jobs keep their order within a shard only; default 1."`
	MinReplicas int64             `hcl:"min_replicas,optional" doc:"Replicas that must confirm a submit (WAIT) before it is answered 202, else 503; default 0."`
	KeyHeader   string            `hcl:"key_header,optional" doc:"With shards, request header whose value picks the job's shard (jobs with equal values keep their order); default none: shards in turn, skipping those whose primary is failing."`
}

type rawRedisSentinel struct {
	rawMeta
	MasterName string   `hcl:"master_name" doc:"Name the sentinels monitor the primary under; required."`
	Addrs      []string `hcl:"addrs" doc:"Sentinels as host:port; required."`
	Username   string   `hcl:"username,optional" doc:"ACL user of the Redis servers; default none."`
	Password   string   `hcl:"password,optional" doc:"Password of the Redis servers and of the sentinels; default none."`
}

type rawRedisCluster struct {
	rawMeta
	Addrs    []string `hcl:"addrs" doc:"Some of the cluster's nodes as host:port, to discover the rest from; required."`
	Username string   `hcl:"username,optional" doc:"ACL user of the nodes; default none."`
	Password string   `hcl:"password,optional" doc:"Password of the nodes; default none."`
}

type rawKafka struct {
	rawMeta
	Brokers    []string `hcl:"brokers" doc:"Bootstrap brokers as host:port; required."`
	Topic      string   `hcl:"topic,optional" doc:"Topic of jobs; default \"openhqm-requests\"."`
	Group      string   `hcl:"group,optional" doc:"Consumer group; default \"openhqm-workers\"."`
	RetryTopic string   `hcl:"retry_topic,optional" doc:"Topic of delayed retries; default topic + \"-retry\"."`
	Version    string   `hcl:"version,optional" doc:"Kafka protocol version such as \"3.6.0\"; default the client's."`
	KeyHeader  string   `hcl:"key_header,optional" doc:"Request header whose value is the partition key; default the route name."`
	TLS        *rawTLS  `hcl:"tls,block" doc:"TLS toward the brokers; default plaintext."`
	SASL       *rawSASL `hcl:"sasl,block" doc:"SASL authentication toward the brokers; default none."`
}

type rawSQS struct {
	rawMeta
	QueueURL  string `hcl:"queue_url" doc:"URL of the queue as SQS answers it, such as \"https://sqs.eu-west-1.amazonaws.com/123456789012/jobs\" (a name ending in \".fifo\" is a FIFO queue); required."`
	Region    string `hcl:"region,optional" doc:"AWS region of the queue; default the region in an AWS queue_url, else the SDK's (AWS_REGION, the shared config)."`
	Endpoint  string `hcl:"endpoint,optional" doc:"Base URL of an SQS-compatible server (tests, local runs) or a VPC endpoint to send requests to; default the AWS endpoint of the region."`
	Protocol  string `hcl:"protocol,optional" doc:"Wire protocol of the SQS API: json or query; AWS speaks both, some SQS-compatible servers (goaws 0.4, older emulators) only query; default \"json\"."`
	KeyHeader string `hcl:"key_header,optional" doc:"For a FIFO queue, request header whose value is the job's message group: SQS hands out a group's jobs in order, one batch at a time; default the route name (each route's jobs in one group)."`
}

type rawTLS struct {
	rawMeta
	CAFile             string `hcl:"ca_file,optional" doc:"PEM file of CAs to trust; default the system pool."`
	CertFile           string `hcl:"cert_file,optional" doc:"PEM client certificate, with key_file; default none."`
	KeyFile            string `hcl:"key_file,optional" doc:"PEM client key, with cert_file; default none."`
	InsecureSkipVerify bool   `hcl:"insecure_skip_verify,optional" doc:"Skip verification of the servers' certificates (testing only); default false."`
}

type rawSASL struct {
	rawMeta
	Mechanism string `hcl:"mechanism" doc:"PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required."`
	Username  string `hcl:"username" doc:"SASL user name; required."`
	Password  string `hcl:"password" doc:"SASL password; required."`
}

type rawResults struct {
	rawMeta
	Backend           string           `hcl:"backend,optional" doc:"Store: memory or redis; default \"memory\"."`
	TTL               string           `hcl:"ttl,optional" doc:"How long a result is kept after completion; default \"1h\"."`
	MaxEntries        int              `hcl:"max_entries,optional" doc:"Bound of the memory store; default 100000."`
	Prefix            string           `hcl:"prefix,optional" doc:"Redis key prefix; default \"openhqm:\"."`
	IdempotencyWindow string           `hcl:"idempotency_window,optional" doc:"How long a client's Idempotency-Key keeps naming its job: a submit with the same key (and principal) within it gets the same id and never a second job; default \"24h\"."`
	MaxBodySize       string           `hcl:"max_body_size,optional" doc:"Largest app answer a job stores, a byte count or a size such as \"10MiB\"; a larger answer fails the job with the sizes in its error; default \"10MiB\"."`
	Redis             *rawResultsRedis `hcl:"redis,block" doc:"Redis settings; required when backend is redis."`
}

type rawResultsRedis struct {
	rawMeta
	URL         string            `hcl:"url,optional" doc:"Redis URL (redis://, rediss:// or unix://); exactly one of url, sentinel and cluster."`
	Sentinel    *rawRedisSentinel `hcl:"sentinel,block" doc:"A primary and its replicas found through Redis Sentinel; exactly one of url, sentinel and cluster."`
	Cluster     *rawRedisCluster  `hcl:"cluster,block" doc:"A Redis Cluster; exactly one of url, sentinel and cluster."`
	TLS         *rawTLS           `hcl:"tls,block" doc:"TLS toward Redis (a rediss:// url also turns it on); default plaintext."`
	MinReplicas int64             `hcl:"min_replicas,optional" doc:"Replicas that must confirm a result write (WAIT) before it counts as stored; default 0."`
}

type rawRoute struct {
	rawMeta
	Name       string         `hcl:"name,label" doc:"The route's name, used in logs and metrics."`
	Priority   int            `hcl:"priority,optional" doc:"Higher wins among routes with equally specific paths; default 0."`
	Match      *rawMatch      `hcl:"match,block" doc:"Which requests the route takes; required."`
	Mode       string         `hcl:"mode,optional" doc:"sync, async or auto (sync unless the client sends Prefer: respond-async); default \"sync\"."`
	OnOverload string         `hcl:"on_overload,optional" doc:"What a request proxied synchronously does when its endpoint is saturated (max_concurrency and max_pending full) or its circuit breaker open: reject (503 + Retry-After) or queue (accepted as a job, 202, replayed when there is room; needs queue); default \"reject\"."`
	Endpoint   string         `hcl:"endpoint" doc:"Name of the endpoint requests are sent to; required."`
	Queue      string         `hcl:"queue,optional" doc:"Name of the queue of jobs; required for async and auto routes."`
	Retry      *rawRetry      `hcl:"retry,block" doc:"Retry policy of the route's jobs; default 3 attempts, exponential backoff."`
	Idempotent bool           `hcl:"idempotent,optional" doc:"Replay is safe even after an ambiguous failure; default false."`
	Timeout    string         `hcl:"timeout,optional" doc:"Deadline toward the app for this route; default the endpoint's timeout."`
	ClientAuth *rawClientAuth `hcl:"client_auth,block" doc:"Who may call the route and read its jobs' results; default anyone."`
	RateLimit  *rawRateLimit  `hcl:"rate_limit,block" doc:"Token bucket limiting the route's requests; default none."`
	Transform  *rawTransform  `hcl:"transform,block" doc:"Rewrites the request from its JSON body at intake, before it is forwarded or queued (jq, at most 100 ms of work; a body that is not JSON or a jq error answers 422); default none."`
}

type rawMatch struct {
	rawMeta
	Methods    []string          `hcl:"methods,optional" doc:"HTTP methods matched; default any."`
	Hosts      []string          `hcl:"hosts,optional" doc:"Host names matched (without port); default any."`
	Path       string            `hcl:"path,optional" doc:"Exact path, or a template such as \"/users/{id}\"; default none."`
	PathPrefix string            `hcl:"path_prefix,optional" doc:"Path prefix matched segment-wise (\"/api\" takes \"/api\" and \"/api/...\"); default none."`
	Headers    map[string]string `hcl:"headers,optional" doc:"Headers that must all match; a value starting with \"~\" is an anchored regular expression; default none."`
	JQ         string            `hcl:"jq,optional" doc:"jq expression on the JSON body that must yield true; default none."`
}

type rawRetry struct {
	rawMeta
	Attempts int      `hcl:"attempts,optional" doc:"Total attempts including the first, 1 to 100; default 3."`
	Backoff  string   `hcl:"backoff,optional" doc:"exponential or constant; default \"exponential\"."`
	Initial  string   `hcl:"initial,optional" doc:"First delay; default \"1s\"."`
	Max      string   `hcl:"max,optional" doc:"Longest delay; default \"1m\"."`
	On       []string `hcl:"on,optional" doc:"Failures retried: connect, timeout, 5xx, 429; default all four."`
}

type rawClientAuth struct {
	rawMeta
	Type   string   `hcl:"type" doc:"bearer, api_key or none; required."`
	Header string   `hcl:"header,optional" doc:"Header carrying the key, for api_key; default \"X-API-Key\"."`
	Tokens []string `hcl:"tokens,optional" doc:"Accepted credentials; required for bearer and api_key."`
}

type rawRateLimit struct {
	rawMeta
	RequestsPerSecond float64 `hcl:"requests_per_second" doc:"Sustained requests per second, more than 0; required."`
	Burst             int     `hcl:"burst,optional" doc:"Requests allowed at once; default requests_per_second rounded up."`
}

type rawTransform struct {
	rawMeta
	Body    string            `hcl:"body,optional" doc:"jq expression whose first result, as compact JSON, replaces the body (Content-Type becomes application/json); default unchanged."`
	Headers map[string]string `hcl:"headers,optional" doc:"Header name to jq expression setting it from the body: a string as it is, other values as compact JSON, null or no result leaves the header unset; default none."`
	Query   map[string]string `hcl:"query,optional" doc:"Query parameter to jq expression setting it from the body, converted as for headers and replacing a parameter of the same name; default none."`
}

type rawSubmitAPI struct {
	rawMeta
	Endpoint   string         `hcl:"endpoint" doc:"Endpoint of submits that do not name one in metadata.endpoint; required."`
	Queue      string         `hcl:"queue" doc:"Queue the submitted jobs go to; required."`
	Retry      *rawRetry      `hcl:"retry,block" doc:"Retry policy of submitted jobs; default 3 attempts, exponential backoff."`
	ClientAuth *rawClientAuth `hcl:"client_auth,block" doc:"Who may submit and read results; default anyone."`
}

type rawWorker struct {
	rawMeta
	Embedded    bool     `hcl:"embedded,optional" doc:"serve runs the worker pool in-process; default true."`
	Concurrency int      `hcl:"concurrency,optional" doc:"Jobs processed at once; default 16."`
	BatchSize   int      `hcl:"batch_size,optional" doc:"Jobs fetched per receive; default 10."`
	Drain       string   `hcl:"drain,optional" doc:"Time to finish in-flight jobs on shutdown; default \"30s\"."`
	Listen      string   `hcl:"listen,optional" doc:"Health and metrics address of a standalone openhqm worker; default \":9090\"."`
	Queues      []string `hcl:"queues,optional" doc:"Queues consumed; default every queue."`
}

type rawTelemetry struct {
	rawMeta
	LogLevel  string `hcl:"log_level,optional" doc:"debug, info, warn or error; default \"info\"."`
	LogFormat string `hcl:"log_format,optional" doc:"json or text; default \"json\"."`
	Metrics   bool   `hcl:"metrics,optional" doc:"Serve Prometheus metrics on /metrics; default true."`
}

// rawMeta records where a block and its attributes were written, and which
// attribute values are stand-ins for a missing env() or file() (their checks
// are skipped). It keeps compact positions, not syntax trees, so that the
// trees of a large file can be collected as soon as it is decoded and the
// positions of 200,000 blocks stay small.
type rawMeta struct {
	defRange     hcl.Range
	attrs        []rawAttr    // in the order of the struct's fields; a block has a handful
	placeholders int          // how many attributes are stand-ins
	found        *foundRanges // elements and entries looked up for diagnostics
}

// rawAttr is where an attribute was written.
type rawAttr struct {
	name string
	// src is the file the attribute is in, to render its positions and to
	// find the elements of a list or the entries of a map again.
	src               *sourceFile
	start, value, end pos // of the attribute, of its value, and the end of both
	placeholder       bool
	// origin says where the value came from when env() or file() read it
	// (such as `the value of env("TOKEN")`): diagnostics then name it so
	// instead of quoting the value.
	origin string
}

// pos is an hcl.Pos in 12 bytes (a configuration is at most MaxConfigSize).
type pos struct{ line, column, byte int32 }

func posOf(p hcl.Pos) pos { return pos{int32(p.Line), int32(p.Column), int32(p.Byte)} }

func (p pos) hcl() hcl.Pos {
	return hcl.Pos{Line: int(p.line), Column: int(p.column), Byte: int(p.byte)}
}

func (a *rawAttr) rng() hcl.Range {
	return hcl.Range{Filename: a.src.name, Start: a.start.hcl(), End: a.end.hcl()}
}

func (a *rawAttr) valueRange() hcl.Range {
	return hcl.Range{Filename: a.src.name, Start: a.value.hcl(), End: a.end.hcl()}
}

// foundRanges caches what elemAt and keyAt found in an attribute's value.
type foundRanges struct {
	elems map[string][]hcl.Range
	keys  map[string]map[string]hcl.Range
}

// sourceFile is a source as the decoder saw it.
type sourceFile struct {
	name string
	src  []byte
	json bool
}

func (m *rawMeta) meta() *rawMeta { return m }

// attr returns the attribute written with name, or nil.
func (m *rawMeta) attr(name string) *rawAttr {
	for i := range m.attrs {
		if m.attrs[i].name == name {
			return &m.attrs[i]
		}
	}
	return nil
}

// has reports whether the attribute was written.
func (m *rawMeta) has(name string) bool { return m.attr(name) != nil }

// known reports whether the attribute was written with a real value (not a
// stand-in for a missing env() or file()).
func (m *rawMeta) known(name string) bool { a := m.attr(name); return a != nil && !a.placeholder }

// at returns the attribute's range, or the block's definition when absent.
func (m *rawMeta) at(name string) *hcl.Range {
	if a := m.attr(name); a != nil {
		r := a.rng()
		return &r
	}
	return m.def()
}

// valueAt returns the attribute's value range, or the block's definition.
func (m *rawMeta) valueAt(name string) *hcl.Range {
	if a := m.attr(name); a != nil {
		r := a.valueRange()
		return &r
	}
	return m.def()
}

// elemAt returns the range of element i of a list attribute, falling back to
// the attribute.
func (m *rawMeta) elemAt(name string, i int) *hcl.Range {
	a := m.attr(name)
	if a == nil {
		return m.def()
	}
	if m.found == nil {
		m.found = &foundRanges{}
	}
	elems, ok := m.found.elems[name]
	if !ok {
		if exprs, diags := hcl.ExprList(a.expr()); !diags.HasErrors() {
			for _, e := range exprs {
				elems = append(elems, e.Range())
			}
		}
		if m.found.elems == nil {
			m.found.elems = map[string][]hcl.Range{}
		}
		m.found.elems[name] = elems
	}
	if i < len(elems) {
		r := elems[i]
		return &r
	}
	return m.at(name)
}

// keyAt returns the range of the map entry with the given key, falling back
// to the attribute.
func (m *rawMeta) keyAt(name, key string) *hcl.Range {
	a := m.attr(name)
	if a == nil {
		return m.def()
	}
	if m.found == nil {
		m.found = &foundRanges{}
	}
	keys, ok := m.found.keys[name]
	if !ok {
		keys = map[string]hcl.Range{}
		if pairs, diags := hcl.ExprMap(a.expr()); !diags.HasErrors() {
			for _, p := range pairs {
				v, d := p.Key.Value(nil)
				if d.HasErrors() || !v.IsKnown() || v.IsNull() || !v.Type().Equals(cty.String) {
					continue
				}
				if _, dup := keys[v.AsString()]; !dup {
					keys[v.AsString()] = hcl.RangeBetween(p.Key.Range(), p.Value.Range())
				}
			}
		}
		if m.found.keys == nil {
			m.found.keys = map[string]map[string]hcl.Range{}
		}
		m.found.keys[name] = keys
	}
	if r, ok := keys[key]; ok {
		return &r
	}
	return m.at(name)
}

// expr parses the attribute's value again from its source: the syntax tree
// is not kept, and this is needed only for the few diagnostics that point
// inside a list or map.
func (a *rawAttr) expr() hcl.Expression {
	r := a.valueRange()
	if r.Start.Byte < 0 || r.End.Byte > len(a.src.src) || r.Start.Byte > r.End.Byte {
		return hcl.StaticExpr(cty.NilVal, r)
	}
	text := a.src.src[r.Start.Byte:r.End.Byte]
	var e hcl.Expression
	if a.src.json {
		e, _ = hcljson.ParseExpressionWithStartPos(text, a.src.name, r.Start)
	} else {
		e, _ = hclsyntax.ParseExpression(text, a.src.name, r.Start)
	}
	if e == nil {
		return hcl.StaticExpr(cty.NilVal, r)
	}
	return e
}

func (m *rawMeta) def() *hcl.Range { r := m.defRange; return &r }
