package config

import (
	"fmt"
	"math"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// builder turns the merged raw tree into the model, collecting diagnostics.
// It keeps building past errors (skipping the broken part) so one load
// reports as many independent problems as possible.
type builder struct {
	mode   LoadMode
	sink   *diagSink
	cfg    *Config
	root   *rawRoot
	rawEP  map[string]*rawEndpoint
	rawQ   map[string]*rawQueue
	rawRt  []*rawRoute // parallel to cfg.Routes
	badRt  map[int]bool
	subRaw *rawSubmitAPI

	routeByName  map[string]int // index in rawRt
	coverChecks  int            // pairs of routes compared for shadowing
	coverSkipped bool           // the comparisons ran out of budget
}

func (b *builder) errorf(subject *hcl.Range, summary, detail string, args ...any) {
	b.sink.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: sentence(fmt.Sprintf(detail, args...)), Subject: subject})
}

func (b *builder) warnf(subject *hcl.Range, summary, detail string, args ...any) {
	b.sink.add(&hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: sentence(fmt.Sprintf(detail, args...)), Subject: subject})
}

// sentence capitalizes a detail that starts with the description of a
// value's origin (details that start with an attribute's name keep it as
// written).
func sentence(s string) string {
	for _, p := range []string{"the value of ", "the content of ", "an entry of ", "a value built from ", "a value from "} {
		if strings.HasPrefix(s, p) {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return s
}

func (b *builder) build(root *rawRoot) *Config {
	b.root = root
	b.cfg = &Config{Endpoints: map[string]*Endpoint{}, Queues: map[string]*Queue{}}
	b.rawEP = map[string]*rawEndpoint{}
	b.rawQ = map[string]*rawQueue{}
	b.badRt = map[int]bool{}
	b.buildServer(root.Server)
	for _, e := range root.Endpoints {
		b.buildEndpoint(e)
	}
	for _, q := range root.Queues {
		b.buildQueue(q)
	}
	b.buildResults(root.Results)
	b.buildWorker(root.Worker)
	b.buildTelemetry(root.Telemetry)
	for _, r := range root.Routes {
		b.buildRoute(r)
	}
	b.buildSubmitAPI(root.SubmitAPI)
	b.check()
	return b.cfg
}

// dur decodes an optional duration attribute, returning def when it is absent
// or unusable.
func (b *builder) dur(m *rawMeta, name, raw string, def time.Duration) (time.Duration, bool) {
	if !m.known(name) {
		return def, false
	}
	d, err := parseDuration(raw)
	if err != nil {
		b.errorf(m.valueAt(name), "Invalid duration", "The value of %s: %s.", name, m.explain(name, err))
		return def, false
	}
	return d, true
}

// positiveDur is dur for attributes that must be more than zero.
func (b *builder) positiveDur(m *rawMeta, name, raw string, def time.Duration, summary string) time.Duration {
	d, ok := b.dur(m, name, raw, def)
	if ok && d <= 0 {
		b.errorf(m.valueAt(name), summary, "%s must be more than zero, such as \"30s\".", name)
		return def
	}
	return d
}

func (b *builder) listen(m *rawMeta, name, raw, def string) string {
	if !m.known(name) {
		return def
	}
	if err := parseListen(raw); err != nil {
		b.errorf(m.valueAt(name), "Invalid listen address", "The value of %s: %s.", name, m.explain(name, err))
		return def
	}
	return raw
}

// atLeast checks an optional integer attribute against a lower bound.
func (b *builder) atLeast(m *rawMeta, name string, v int64, min int64, def int64) int64 {
	if !m.known(name) {
		return def
	}
	if v < min {
		b.errorf(m.valueAt(name), "Value out of range", "%s must be at least %d, got %s.", name, min, m.show(name, v))
		return def
	}
	return v
}

// oneOf checks an enumerated string attribute.
func (b *builder) oneOf(m *rawMeta, name, raw, def, summary string, allowed []string) string {
	if !m.known(name) {
		return def
	}
	if slices.Contains(allowed, raw) {
		return raw
	}
	hint := ""
	if m.originOf(name) == "" { // a suggestion would tell how close the value is
		hint = didYouMean(raw, allowed)
	}
	b.errorf(m.valueAt(name), summary, "%s is not a valid %s; use one of %s.%s", m.quote(name, raw), name, quoteList(allowed), hint)
	return ""
}

func (b *builder) buildServer(r *rawServer) {
	s := &b.cfg.Server
	if r == nil {
		r = &rawServer{}
	}
	m := &r.rawMeta
	s.Listen = b.listen(m, "listen", r.Listen, ":8000")
	if m.known("admin_listen") && r.AdminListen != "" {
		s.AdminListen = b.listen(m, "admin_listen", r.AdminListen, "")
		if s.AdminListen != "" && s.AdminListen == s.Listen {
			both := m.quote("listen", s.Listen)
			if o := m.originOf("admin_listen"); o != "" {
				both = o
			}
			b.errorf(m.valueAt("admin_listen"), "Admin listener conflicts with listen", "admin_listen and listen are both %s; use another port for admin_listen, or leave it empty to serve admin paths on the main listener.", both)
		}
	}
	if m.known("admin_token") && r.AdminToken != "" {
		// Never quoted: it is a secret even when written in the file.
		if !validToken(r.AdminToken) {
			b.errorf(m.valueAt("admin_token"), "Invalid admin token", "admin_token must be printable characters without spaces (it is sent as \"Authorization: Bearer <token>\"); check the secret it is read from.")
		} else {
			s.AdminToken = r.AdminToken
		}
	}
	s.MaxConnections = int(b.atLeast(m, "max_connections", int64(r.MaxConnections), 0, 0))
	s.MaxBodySize = b.size(m, "max_body_size", r.MaxBodySize, 10<<20)
	s.ReadTimeout = b.positiveDur(m, "read_timeout", r.ReadTimeout, 30*time.Second, "Invalid timeout")
	s.WriteTimeout, _ = b.dur(m, "write_timeout", r.WriteTimeout, 0)
	s.IdleTimeout, _ = b.dur(m, "idle_timeout", r.IdleTimeout, 90*time.Second)
}

// validToken reports whether s can be sent as a bearer token: visible ASCII
// characters only.
func validToken(s string) bool {
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func (b *builder) buildEndpoint(r *rawEndpoint) {
	m := &r.rawMeta
	if first, dup := b.rawEP[r.Name]; dup {
		b.errorf(m.def(), "Duplicate endpoint", "An endpoint named %q is already defined at %s; rename one of them.", r.Name, where(first.defRange))
		return
	}
	b.rawEP[r.Name] = r
	e := &Endpoint{Name: r.Name, Range: r.defRange}
	b.cfg.Endpoints[r.Name] = e
	if m.known("url") {
		u, err := parseHTTPURL(r.URL)
		if err != nil {
			b.errorf(m.valueAt("url"), "Invalid URL", "The endpoint url %s.", m.tail("url", err))
		}
		e.URL = u
	}
	e.Timeout = b.positiveDur(m, "timeout", r.Timeout, 30*time.Second, "Invalid timeout")
	e.MaxConcurrency = int(b.atLeast(m, "max_concurrency", int64(r.MaxConcurrency), 0, 0))
	e.MaxPending = int(b.atLeast(m, "max_pending", int64(r.MaxPending), 0, int64(4*e.MaxConcurrency)))
	e.Headers = b.headers(m, "headers", r.Headers, true)
	e.Auth = b.buildAuth(r.Auth)
	e.CircuitBreaker = b.buildBreaker(r.CircuitBreaker)
	e.Adaptive = b.buildAdaptive(r, e.MaxConcurrency)
}

// buildAdaptive validates an endpoint's adaptive_concurrency block, whose
// ceiling is the endpoint's max_concurrency.
func (b *builder) buildAdaptive(ep *rawEndpoint, ceiling int) *AdaptiveConcurrency {
	r := ep.Adaptive
	if r == nil {
		return nil
	}
	m := &r.rawMeta
	if ceiling <= 0 {
		b.errorf(m.def(), "Adaptive concurrency without a ceiling", "adaptive_concurrency moves the limit under max_concurrency; set max_concurrency on endpoint %q (the most the app may ever get).", ep.Name)
		return nil
	}
	a := &AdaptiveConcurrency{Min: int(b.atLeast(m, "min", int64(r.Min), 1, 1)), Tolerance: 1.5}
	if a.Min > ceiling {
		b.errorf(m.valueAt("min"), "Invalid min", "min is %d, above max_concurrency (%d); the limit moves between the two.", a.Min, ceiling)
	}
	if m.known("tolerance") {
		if r.Tolerance < 1 || math.IsNaN(r.Tolerance) || math.IsInf(r.Tolerance, 0) {
			b.errorf(m.valueAt("tolerance"), "Invalid tolerance", "tolerance is how many times its unloaded latency the app may take before the limit comes down: a number of at least 1, such as 1.5.")
		} else {
			a.Tolerance = r.Tolerance
		}
	}
	return a
}

// buildBreaker validates an endpoint's circuit_breaker block.
func (b *builder) buildBreaker(r *rawBreaker) *CircuitBreaker {
	if r == nil {
		return nil
	}
	m := &r.rawMeta
	cb := &CircuitBreaker{
		Failures: int(b.atLeast(m, "failures", int64(r.Failures), 1, 5)),
		OpenFor:  b.positiveDur(m, "open_for", r.OpenFor, 5*time.Second, "Invalid open_for"),
	}
	if m.known("probe") {
		switch p := r.Probe; {
		case !strings.HasPrefix(p, "/"):
			b.errorf(m.valueAt("probe"), "Invalid probe path", "The probe is a path such as \"/health\", requested with GET under the endpoint's URL; it must start with \"/\".")
		case strings.ContainsAny(p, " \t\r\n?#"):
			b.errorf(m.valueAt("probe"), "Invalid probe path", "The probe path may hold no whitespace, query or fragment; write a plain path such as \"/health\".")
		default:
			cb.Probe = p
		}
	}
	return cb
}

// headers validates a static header map and returns it sorted by canonical name.
func (b *builder) headers(m *rawMeta, attr string, h map[string]string, warnHop bool) []Header {
	if !m.known(attr) {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	var out []Header
	for _, k := range keys {
		v := h[k]
		if !IsToken(k) {
			b.errorf(m.keyAt(attr, k), "Invalid header name", "%s is not a valid header name; use letters, digits and - only, such as \"X-Service\".", m.quotePart(attr, k))
			continue
		}
		if !ValidHeaderValue(v) {
			b.errorf(m.keyAt(attr, k), "Invalid header value", "The value of header %s contains a control character (such as a newline); remove it.", m.quotePart(attr, k))
			continue
		}
		c := textproto.CanonicalMIMEHeaderKey(k)
		if prev, ok := seen[c]; ok {
			b.errorf(m.keyAt(attr, k), "Duplicate header", "Header names are case-insensitive: %s and %s are the same header; keep one.", m.quotePart(attr, prev), m.quotePart(attr, k))
			continue
		}
		seen[c] = k
		if warnHop && (hopByHop[c] || c == "Host" || c == "Content-Length") {
			b.warnf(m.keyAt(attr, k), "Header is managed by the proxy", "%s is set or stripped by openhqm on every request, so this value is ignored; remove it.", m.quotePart(attr, k))
			continue
		}
		out = append(out, Header{Name: c, Value: v})
	}
	return out
}

var authTypes = []string{"bearer", "api_key", "basic", "header", "none"}

func (b *builder) buildAuth(r *rawAuth) Auth {
	if r == nil {
		return Auth{Type: AuthNone}
	}
	m := &r.rawMeta
	t := b.oneOf(m, "type", r.Type, "", "Invalid auth type", authTypes)
	a := Auth{Type: AuthType(t), Token: r.Token, Header: r.Header, Username: r.Username, Password: r.Password}
	var need []string
	switch a.Type {
	case AuthBearer:
		need = []string{"token"}
	case AuthAPIKey:
		need = []string{"token"}
		if a.Header == "" {
			a.Header = "X-API-Key"
		}
	case AuthBasic:
		need = []string{"username", "password"}
	case AuthHeader:
		need = []string{"header", "token"}
	case AuthNone:
	default:
		return a
	}
	uses := map[AuthType][]string{AuthBearer: {"token"}, AuthAPIKey: {"token", "header"}, AuthBasic: {"username", "password"}, AuthHeader: {"header", "token"}}
	for _, n := range need {
		if !m.has(n) {
			b.errorf(m.def(), "Incomplete auth block", "An auth block of type %s needs %s = ...; add it (env() or file() keep secrets out of the file).", m.quote("type", t), n)
		} else if m.known(n) && authField(&a, n) == "" && n != "password" {
			b.errorf(m.at(n), "Empty credential", "%s is empty; an auth block of type %s needs a value.", n, m.quote("type", t))
		}
	}
	for _, n := range []string{"token", "header", "username", "password"} {
		if m.has(n) && !slices.Contains(uses[a.Type], n) {
			b.warnf(m.at(n), "Unused attribute", "%s has no effect with type = %s; remove it or change the type.", n, m.quote("type", t))
		}
	}
	if m.known("header") && slices.Contains(uses[a.Type], "header") && !IsToken(a.Header) {
		b.errorf(m.valueAt("header"), "Invalid header name", "%s is not a valid header name.", m.quote("header", a.Header))
	}
	if m.known("header") {
		a.Header = textproto.CanonicalMIMEHeaderKey(a.Header)
	}
	if a.Type == AuthNone {
		return Auth{Type: AuthNone}
	}
	return a
}

func authField(a *Auth, n string) string {
	switch n {
	case "token":
		return a.Token
	case "header":
		return a.Header
	case "username":
		return a.Username
	case "password":
		return a.Password
	}
	return ""
}

var queueBackends = []string{"memory", "redis", "kafka", "sqs"}

func (b *builder) buildQueue(r *rawQueue) {
	m := &r.rawMeta
	if first, dup := b.rawQ[r.Name]; dup {
		b.errorf(m.def(), "Duplicate queue", "A queue named %q is already defined at %s; rename one of them.", r.Name, where(first.defRange))
		return
	}
	b.rawQ[r.Name] = r
	q := &Queue{Name: r.Name, Range: r.defRange}
	b.cfg.Queues[r.Name] = q
	q.Backend = QueueBackend(b.oneOf(m, "backend", r.Backend, "memory", "Invalid queue backend", queueBackends))
	q.MaxDepth = b.atLeast(m, "max_depth", r.MaxDepth, 1, 100000)
	q.Lease, _ = b.dur(m, "lease", r.Lease, 60*time.Second)
	if q.Lease < time.Second {
		b.errorf(m.valueAt("lease"), "Invalid lease", "lease must be at least 1s: a shorter lease redelivers jobs that are still being processed.")
		q.Lease = 60 * time.Second
	}
	q.DeadLetterMax = b.atLeast(m, "dead_letter_max", r.DeadLetterMax, 1, 10000)
	base, baseMeta, baseAttr := r.Name, m, ""
	b.blockFor(m, "redis", optMeta(r.Redis), q.Backend == BackendRedis, string(q.Backend))
	b.blockFor(m, "kafka", optMeta(r.Kafka), q.Backend == BackendKafka, string(q.Backend))
	b.blockFor(m, "sqs", optMeta(r.SQS), q.Backend == BackendSQS, string(q.Backend))
	switch {
	case q.Backend == BackendRedis && r.Redis != nil:
		q.Redis = b.buildRedisQueue(r.Redis)
		base, baseMeta, baseAttr = q.Redis.Stream, &r.Redis.rawMeta, "stream"
	case q.Backend == BackendKafka && r.Kafka != nil:
		q.Kafka = b.buildKafka(r.Kafka)
		base, baseMeta, baseAttr = q.Kafka.Topic, &r.Kafka.rawMeta, "topic"
	case q.Backend == BackendSQS && r.SQS != nil:
		q.SQS = b.buildSQS(r.SQS)
		base, baseMeta, baseAttr = sqsQueueName(q.SQS.QueueURL), &r.SQS.rawMeta, "queue_url"
	}
	q.DeadLetter = base + "-dlq"
	if q.SQS != nil {
		q.DeadLetter = sqsDeadLetterFor(base)
	}
	if m.known("dead_letter") {
		if r.DeadLetter == "" {
			def := strconv.Quote(q.DeadLetter)
			if o := baseMeta.originOf(baseAttr); o != "" {
				def = fmt.Sprintf("(%s followed by \"-dlq\")", o)
			}
			b.errorf(m.valueAt("dead_letter"), "Empty name", "dead_letter is empty; name the dead-letter stream, topic or queue, or remove the attribute for the default %s.", def)
		} else {
			q.DeadLetter = r.DeadLetter
		}
	}
	if q.SQS != nil {
		b.checkSQSQueue(q, r)
	}
}

// blockFor checks that a backend's settings block (bm, nil when absent) is
// present exactly when the backend is selected.
func (b *builder) blockFor(m *rawMeta, block string, bm *rawMeta, selected bool, backend string) {
	present := bm != nil
	switch {
	case selected && !present:
		b.errorf(m.at("backend"), fmt.Sprintf("Missing %s block", block), "backend = %q needs a %s { ... } block with its connection settings.", block, block)
	case present && !selected && backend != "":
		b.errorf(bm.def(), fmt.Sprintf("Unexpected %s block", block), "This %s block has no effect with backend = %s; set backend = %q or remove the block.", block, m.quote("backend", backend), block)
	}
}

func (b *builder) redisURL(m *rawMeta, raw string) {
	if m.known("url") {
		if err := parseRedisURL(raw); err != nil {
			b.errorf(m.valueAt("url"), "Invalid URL", "The Redis url %s.", m.tail("url", err))
		}
	}
}

// name decodes an optional name attribute; defShown is how a diagnostic
// shows the default ("" for def quoted).
func (b *builder) name(m *rawMeta, attr, raw, def, defShown string) string {
	if !m.known(attr) {
		return def
	}
	if strings.TrimSpace(raw) == "" {
		if defShown == "" {
			defShown = strconv.Quote(def)
		}
		b.errorf(m.valueAt(attr), "Empty name", "%s is empty; give a name or remove the attribute for the default %s.", attr, defShown)
		return def
	}
	return raw
}

func (b *builder) buildRedisQueue(r *rawRedisQueue) *RedisQueue {
	m := &r.rawMeta
	return &RedisQueue{
		RedisConn: b.buildRedisConn(redisBlock{m: m, url: r.URL, sentinel: r.Sentinel, cluster: r.Cluster, tls: r.TLS, minReplicas: r.MinReplicas}),
		Stream:    b.name(m, "stream", r.Stream, "openhqm-requests", ""),
		Group:     b.name(m, "group", r.Group, "openhqm-workers", ""),
		Shards:    int(b.atLeast(m, "shards", r.Shards, 1, 1)),
		KeyHeader: b.keyHeader(m, r.KeyHeader),
	}
}

var kafkaVersion = regexp.MustCompile(`^\d+\.\d+\.\d+(\.\d+)?$`)

func (b *builder) buildKafka(r *rawKafka) *KafkaQueue {
	m := &r.rawMeta
	k := &KafkaQueue{Brokers: r.Brokers, Version: r.Version}
	if m.known("brokers") {
		if len(r.Brokers) == 0 {
			b.errorf(m.valueAt("brokers"), "Missing brokers", "brokers is empty; list at least one bootstrap broker as \"host:port\".")
		}
		for i, br := range r.Brokers {
			if err := parseHostPort(br); err != nil {
				b.errorf(m.elemAt("brokers", i), "Invalid broker address", "%s.", m.explain("brokers", err))
			}
		}
	}
	k.Topic = b.name(m, "topic", r.Topic, "openhqm-requests", "")
	k.Group = b.name(m, "group", r.Group, "openhqm-workers", "")
	retryShown := ""
	if o := m.originOf("topic"); o != "" {
		retryShown = fmt.Sprintf("(%s followed by \"-retry\")", o)
	}
	k.RetryTopic = b.name(m, "retry_topic", r.RetryTopic, k.Topic+"-retry", retryShown)
	if k.RetryTopic == k.Topic {
		b.errorf(m.valueAt("retry_topic"), "Retry topic equals topic", "retry_topic must differ from topic, or retried jobs are consumed as new ones immediately.")
	}
	if m.known("version") && !kafkaVersion.MatchString(r.Version) {
		b.errorf(m.valueAt("version"), "Invalid Kafka version", "%s is not a Kafka version; write it as \"3.6.0\".", m.quote("version", r.Version))
	}
	k.KeyHeader = b.keyHeader(m, r.KeyHeader)
	if t := r.TLS; t != nil {
		tm := &t.rawMeta
		k.TLS = &TLS{CAFile: b.tlsFile(tm, "ca_file", t.CAFile), CertFile: b.tlsFile(tm, "cert_file", t.CertFile), KeyFile: b.tlsFile(tm, "key_file", t.KeyFile), InsecureSkipVerify: t.InsecureSkipVerify}
		if tm.has("cert_file") != tm.has("key_file") {
			b.errorf(tm.def(), "Incomplete client certificate", "cert_file and key_file go together; set both or neither.")
		}
	}
	if s := r.SASL; s != nil {
		sm := &s.rawMeta
		mech := b.oneOf(sm, "mechanism", s.Mechanism, "", "Invalid SASL mechanism", []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
		k.SASL = &SASL{Mechanism: mech, Username: s.Username, Password: s.Password}
		if sm.known("username") && s.Username == "" {
			b.errorf(sm.at("username"), "Empty credential", "username is empty; SASL needs a user name.")
		}
	}
	return k
}

// keyHeader checks an optional key_header attribute and canonicalizes it.
func (b *builder) keyHeader(m *rawMeta, raw string) string {
	if !m.known("key_header") {
		return ""
	}
	if !IsToken(raw) {
		b.errorf(m.valueAt("key_header"), "Invalid header name", "%s is not a valid header name.", m.quote("key_header", raw))
	}
	return textproto.CanonicalMIMEHeaderKey(raw)
}

// tlsFile resolves a TLS file against the configuration file's directory and
// reports a missing one like a missing file() (a warning when validating).
func (b *builder) tlsFile(m *rawMeta, attr, p string) string {
	if !m.known(attr) || p == "" {
		return ""
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(m.attr(attr).src.name), p)
	}
	if _, err := os.Stat(p); err != nil {
		sev := hcl.DiagWarning
		if b.mode == ModeRuntime {
			sev = hcl.DiagError
		}
		b.sink.add(&hcl.Diagnostic{Severity: sev, Summary: "Missing file", Detail: fmt.Sprintf("The file %s does not exist; mount it there or fix the path.", named(m, attr, p)), Subject: m.at(attr)})
	}
	return p
}

func (b *builder) buildResults(r *rawResults) {
	res := &b.cfg.Results
	if r == nil {
		r = &rawResults{}
	}
	m := &r.rawMeta
	res.Backend = QueueBackend(b.oneOf(m, "backend", r.Backend, "memory", "Invalid results backend", []string{"memory", "redis"}))
	b.blockFor(m, "redis", optMeta(r.Redis), res.Backend == BackendRedis, string(res.Backend))
	if res.Backend == BackendRedis && r.Redis != nil {
		rr := r.Redis
		c := b.buildRedisConn(redisBlock{m: &rr.rawMeta, url: rr.URL, sentinel: rr.Sentinel, cluster: rr.Cluster, tls: rr.TLS, minReplicas: rr.MinReplicas})
		res.Redis, res.RedisURL = &c, c.URL
	}
	res.TTL = b.positiveDur(m, "ttl", r.TTL, time.Hour, "Invalid ttl")
	res.MaxEntries = int(b.atLeast(m, "max_entries", int64(r.MaxEntries), 1, 100000))
	res.Prefix = "openhqm:"
	if m.known("prefix") {
		res.Prefix = r.Prefix
	}
	res.MaxBodySize = b.size(m, "max_body_size", r.MaxBodySize, 10<<20)
	res.IdempotencyWindow = b.positiveDur(m, "idempotency_window", r.IdempotencyWindow, 24*time.Hour, "Invalid idempotency window")
}

// size is the positive byte count of attribute name, def when it is not set.
func (b *builder) size(m *rawMeta, name, raw string, def int64) int64 {
	if !m.known(name) {
		return def
	}
	n, err := parseSize(raw)
	switch {
	case err != nil:
		b.errorf(m.valueAt(name), "Invalid size", "The value of %s: %s.", name, m.explain(name, err))
	case n <= 0:
		b.errorf(m.valueAt(name), "Invalid size", "%s must be more than zero, such as \"10MiB\".", name)
	default:
		return n
	}
	return def
}

func (b *builder) buildWorker(r *rawWorker) {
	w := &b.cfg.Worker
	if r == nil {
		r = &rawWorker{}
	}
	m := &r.rawMeta
	w.Embedded = !m.has("embedded") || r.Embedded
	w.Concurrency = int(b.atLeast(m, "concurrency", int64(r.Concurrency), 1, 16))
	w.BatchSize = int(b.atLeast(m, "batch_size", int64(r.BatchSize), 1, 10))
	w.Drain, _ = b.dur(m, "drain", r.Drain, 30*time.Second)
	w.Listen = b.listen(m, "listen", r.Listen, ":9090")
	w.Queues = r.Queues
}

func (b *builder) buildTelemetry(r *rawTelemetry) {
	t := &b.cfg.Telemetry
	if r == nil {
		r = &rawTelemetry{}
	}
	m := &r.rawMeta
	// Case-insensitive, with Python's names too: configurations ported from
	// the original OpenHQM say INFO, WARNING, CRITICAL.
	level := strings.ToLower(r.LogLevel)
	switch level {
	case "warning":
		level = "warn"
	case "critical":
		level = "error"
	}
	t.LogLevel = b.oneOf(m, "log_level", level, "info", "Invalid log level", []string{"debug", "info", "warn", "error"})
	t.LogFormat = b.oneOf(m, "log_format", r.LogFormat, "json", "Invalid log format", []string{"json", "text"})
	t.Metrics = !m.has("metrics") || r.Metrics
}

func (b *builder) buildSubmitAPI(r *rawSubmitAPI) {
	if r == nil {
		return
	}
	b.subRaw = r
	b.cfg.SubmitAPI = &SubmitAPI{Endpoint: r.Endpoint, Queue: r.Queue, Retry: b.buildRetry(r.Retry), ClientAuth: b.buildClientAuth(r.ClientAuth)}
}
