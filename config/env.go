package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// envVars are the OPENHQM_* variables of the original OpenHQM that FromEnv
// understands.
var envVars = []string{
	"OPENHQM_PROXY__ENABLED", "OPENHQM_PROXY__DEFAULT_ENDPOINT", "OPENHQM_PROXY__ENDPOINTS",
	"OPENHQM_QUEUE__TYPE", "OPENHQM_QUEUE__REDIS_URL",
	"OPENHQM_CACHE__TYPE", "OPENHQM_CACHE__REDIS_URL",
	"OPENHQM_WORKER__BATCH_SIZE", "OPENHQM_WORKER__TIMEOUT_SECONDS", "OPENHQM_WORKER__MAX_RETRIES",
	"OPENHQM_MONITORING__LOG_LEVEL", "OPENHQM_MONITORING__METRICS_ENABLED",
	"OPENHQM_SERVER__HOST", "OPENHQM_SERVER__PORT",
}

// EnvVars returns the names of the OPENHQM_* variables FromEnv reads.
func EnvVars() []string { return append([]string(nil), envVars...) }

// envName is the file name the ranges of a configuration built by FromEnv
// carry.
const envName = "<environment>"

type envEndpoint struct {
	URL            string            `json:"url"`
	Method         string            `json:"method"`
	Timeout        *float64          `json:"timeout"`
	AuthType       string            `json:"auth_type"`
	AuthToken      string            `json:"auth_token"`
	AuthHeaderName string            `json:"auth_header_name"`
	AuthUsername   string            `json:"auth_username"`
	AuthPassword   string            `json:"auth_password"`
	Headers        map[string]string `json:"headers"`
}

// FromEnv builds a configuration from the original OpenHQM's OPENHQM_*
// variables. ok is false when none is set. The result has a sync catch-all
// route "/" to the default endpoint (when the proxy is enabled), a submit_api
// on a queue named "requests" (Redis stream "openhqm-requests", group
// "openhqm-workers", dead letter "openhqm-dlq"), results in Redis
// (OPENHQM_CACHE__TYPE=redis) or memory, the worker's batch size, timeout
// (endpoint timeout) and retries (max_retries+1 attempts), and
// worker.embedded false when the queue is Redis (the original runs separate
// workers). lookup nil means no variable is set.
//
// The variables are translated into HCL and loaded like a file, so the result
// has the same defaults and passes the same checks as a configuration file.
// A bad value is an error naming the variable; it does not quote the value,
// which may hold a credential. Files is empty.
func FromEnv(lookup func(string) (string, bool)) (cfg *Config, ok bool, err error) {
	if lookup == nil {
		return nil, false, nil
	}
	vals := map[string]string{}
	for _, n := range envVars {
		if v, set := lookup(n); set {
			vals[n] = v
		}
	}
	if len(vals) == 0 {
		return nil, false, nil
	}
	for _, n := range sortedNames(vals) {
		if !utf8.ValidString(vals[n]) {
			return nil, true, fmt.Errorf("%s: not valid UTF-8", n)
		}
	}
	w := &envHCL{from: map[int]envFrom{}, line: 1}
	if err := w.translate(vals); err != nil {
		return nil, true, err
	}
	origin := func(r hcl.Range) string {
		switch f := w.from[r.Start.Line]; {
		case f.within != "":
			return "a value from " + f.variable
		case f.variable != "":
			return "the value of " + f.variable
		}
		return ""
	}
	cfg, _, diags := parse([]source{{envName, w.buf.Bytes()}}, Options{Mode: ModeRuntime, LookupEnv: noEnv, origin: origin})
	if diags.HasErrors() {
		return nil, true, w.errorOf(diags)
	}
	var srcs []source
	for _, n := range sortedNames(vals) {
		srcs = append(srcs, source{n, []byte(vals[n])})
	}
	cfg.Digest = digest(srcs)
	cfg.Files = nil
	return cfg, true, nil
}

// envHCL writes the configuration the OPENHQM_* variables describe as HCL,
// remembering which variable each line's value came from so that the
// builder's diagnostics can name it.
type envHCL struct {
	buf    bytes.Buffer
	indent int
	line   int             // the line being written, from 1
	from   map[int]envFrom // line → where its value came from
	within string          // the part of a variable being written, such as `endpoint "a"`
}

// envFrom is where a line of the translation came from.
type envFrom struct {
	variable string
	within   string // `endpoint "a"` for a line from OPENHQM_PROXY__ENDPOINTS
}

// translate checks what only the variables' own syntax can tell (booleans,
// numbers, JSON, the original's vocabulary) and writes the rest for the
// builder to check.
func (w *envHCL) translate(vals map[string]string) error {
	get := func(n string) string { return strings.TrimSpace(vals[n]) }
	bad := func(n string, format string, args ...any) error {
		return fmt.Errorf("%s: %s", n, fmt.Sprintf(format, args...))
	}

	host, port := get("OPENHQM_SERVER__HOST"), get("OPENHQM_SERVER__PORT")
	if port == "" {
		port = "8000"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return bad("OPENHQM_SERVER__PORT", "not a port number")
	}
	if host == "0.0.0.0" {
		host = ""
	}
	listen := net.JoinHostPort(host, port)

	proxy := false
	if v := get("OPENHQM_PROXY__ENABLED"); v != "" {
		b, ok := parseEnvBool(v)
		if !ok {
			return bad("OPENHQM_PROXY__ENABLED", "not a boolean; use true or false")
		}
		proxy = b
	}
	timeout, timeoutFrom := 30*time.Second, ""
	if v := get("OPENHQM_WORKER__TIMEOUT_SECONDS"); v != "" {
		d, ok := envSeconds(v)
		if !ok {
			return bad("OPENHQM_WORKER__TIMEOUT_SECONDS", "not a positive number of seconds")
		}
		timeout, timeoutFrom = d, "OPENHQM_WORKER__TIMEOUT_SECONDS"
	}
	retries := -1
	if v := get("OPENHQM_WORKER__MAX_RETRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 99 {
			return bad("OPENHQM_WORKER__MAX_RETRIES", "not a number from 0 to 99")
		}
		retries = n
	}
	var metrics *bool
	if v := get("OPENHQM_MONITORING__METRICS_ENABLED"); v != "" {
		b, ok := parseEnvBool(v)
		if !ok {
			return bad("OPENHQM_MONITORING__METRICS_ENABLED", "not a boolean; use true or false")
		}
		metrics = &b
	}
	queueType := strings.ToLower(get("OPENHQM_QUEUE__TYPE"))
	if queueType != "" && queueType != "memory" && queueType != "redis" {
		return bad("OPENHQM_QUEUE__TYPE", "not supported from environment variables (memory or redis); write an HCL configuration for other queues")
	}
	cacheType := strings.ToLower(get("OPENHQM_CACHE__TYPE"))
	if cacheType != "" && cacheType != "memory" && cacheType != "redis" {
		return bad("OPENHQM_CACHE__TYPE", "not supported; use memory or redis")
	}

	type endpoint struct {
		name, from string
		write      func()
		timeout    time.Duration
	}
	var eps []endpoint
	named := map[string]bool{}
	if v := get("OPENHQM_PROXY__ENDPOINTS"); v != "" {
		var m map[string]envEndpoint
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return bad("OPENHQM_PROXY__ENDPOINTS", "not a JSON object of endpoints: %v", jsonReason(err))
		}
		for _, name := range sortedNames(m) {
			e := m[name]
			t, err := e.check(name, timeout)
			if err != nil {
				return bad("OPENHQM_PROXY__ENDPOINTS", "%v", err)
			}
			eps = append(eps, endpoint{name: name, from: "OPENHQM_PROXY__ENDPOINTS", timeout: t, write: func() { w.endpoint(name, e, t, timeoutFrom) }})
			named[name] = true
		}
	}
	def := ""
	if v := get("OPENHQM_PROXY__DEFAULT_ENDPOINT"); v != "" {
		switch {
		case named[v]:
			def = v
		case strings.Contains(v, "://"):
			def = "default"
			for named[def] {
				def += "_"
			}
			name := def
			eps = append(eps, endpoint{name: name, timeout: timeout, write: func() {
				w.open("endpoint", "OPENHQM_PROXY__DEFAULT_ENDPOINT", name)
				w.attr("url", cty.StringVal(v), "OPENHQM_PROXY__DEFAULT_ENDPOINT")
				w.attr("timeout", cty.StringVal(timeout.String()), timeoutFrom)
				w.close()
			}})
		default:
			return bad("OPENHQM_PROXY__DEFAULT_ENDPOINT", "neither a URL nor the name of an endpoint in OPENHQM_PROXY__ENDPOINTS (%s)", quoteList(sortedNames(named)))
		}
	} else if len(eps) == 1 {
		def = eps[0].name
	}
	if def == "" {
		if len(eps) == 0 {
			return errors.New("no endpoint to forward to: set OPENHQM_PROXY__DEFAULT_ENDPOINT to the app's URL (or OPENHQM_PROXY__ENDPOINTS)")
		}
		return fmt.Errorf("OPENHQM_PROXY__DEFAULT_ENDPOINT is not set and OPENHQM_PROXY__ENDPOINTS defines several endpoints (%s); name the default one", quoteList(sortedNames(named)))
	}

	w.open("server", "")
	w.attr("listen", cty.StringVal(listen), "OPENHQM_SERVER__HOST")
	w.close()
	for _, e := range eps {
		e.write()
	}

	w.open("queue", "", "requests")
	lease := time.Minute
	for _, e := range eps {
		// A job must outlive its longest request, or it is redelivered while running.
		lease = max(lease, e.timeout+30*time.Second)
	}
	if queueType == "redis" {
		u, from := get("OPENHQM_QUEUE__REDIS_URL"), "OPENHQM_QUEUE__REDIS_URL"
		if u == "" {
			u, from = "redis://localhost:6379", "OPENHQM_QUEUE__TYPE"
		}
		w.attr("backend", cty.StringVal("redis"), "OPENHQM_QUEUE__TYPE")
		w.open("redis", from)
		w.attr("url", cty.StringVal(u), from)
		w.attr("stream", cty.StringVal("openhqm-requests"), "")
		w.attr("group", cty.StringVal("openhqm-workers"), "")
		w.close()
	} else {
		w.attr("backend", cty.StringVal("memory"), "OPENHQM_QUEUE__TYPE")
	}
	w.attr("lease", cty.StringVal(lease.String()), timeoutFrom)
	w.attr("dead_letter", cty.StringVal("openhqm-dlq"), "")
	w.close()

	if cacheType == "redis" {
		u, from := get("OPENHQM_CACHE__REDIS_URL"), "OPENHQM_CACHE__REDIS_URL"
		if u == "" {
			u, from = get("OPENHQM_QUEUE__REDIS_URL"), "OPENHQM_QUEUE__REDIS_URL"
		}
		if u == "" {
			u, from = "redis://localhost:6379", "OPENHQM_CACHE__TYPE"
		}
		w.open("results", "OPENHQM_CACHE__TYPE")
		w.attr("backend", cty.StringVal("redis"), "OPENHQM_CACHE__TYPE")
		w.open("redis", from)
		w.attr("url", cty.StringVal(u), from)
		w.close()
		w.close()
	}

	w.open("worker", "")
	// The original's worker serves its /health and /metrics where its API
	// would listen: its manifests probe that port.
	w.attr("listen", cty.StringVal(listen), "OPENHQM_SERVER__HOST")
	if queueType == "redis" {
		w.attr("embedded", cty.False, "OPENHQM_QUEUE__TYPE")
	}
	if v := get("OPENHQM_WORKER__BATCH_SIZE"); v != "" {
		// Written as text: the decoder's conversion to a number is the check.
		w.attr("batch_size", cty.StringVal(v), "OPENHQM_WORKER__BATCH_SIZE")
	}
	w.close()

	if v := get("OPENHQM_MONITORING__LOG_LEVEL"); v != "" || metrics != nil {
		w.open("telemetry", "")
		if v != "" {
			w.attr("log_level", cty.StringVal(v), "OPENHQM_MONITORING__LOG_LEVEL")
		}
		if metrics != nil {
			w.attr("metrics", cty.BoolVal(*metrics), "OPENHQM_MONITORING__METRICS_ENABLED")
		}
		w.close()
	}

	w.open("submit_api", "")
	w.attr("endpoint", cty.StringVal(def), "OPENHQM_PROXY__DEFAULT_ENDPOINT")
	w.attr("queue", cty.StringVal("requests"), "")
	if retries >= 0 {
		w.open("retry", "OPENHQM_WORKER__MAX_RETRIES")
		w.attr("attempts", cty.NumberIntVal(int64(retries+1)), "OPENHQM_WORKER__MAX_RETRIES")
		w.close()
	}
	w.close()

	if proxy {
		// A sync route makes no jobs, so the retry policy stays with submit_api.
		w.open("route", "OPENHQM_PROXY__ENABLED", "proxy")
		w.open("match", "")
		w.attr("path_prefix", cty.StringVal("/"), "")
		w.close()
		w.attr("mode", cty.StringVal("sync"), "")
		w.attr("endpoint", cty.StringVal(def), "OPENHQM_PROXY__DEFAULT_ENDPOINT")
		w.close()
	}
	return nil
}

// check validates what the builder cannot see in an endpoint of
// OPENHQM_PROXY__ENDPOINTS (the original's field names and vocabulary) and
// returns its timeout.
func (e *envEndpoint) check(name string, timeout time.Duration) (time.Duration, error) {
	if name == "" {
		return 0, errors.New("an endpoint has an empty name")
	}
	if e.Timeout != nil {
		d, ok := envSeconds(strconv.FormatFloat(*e.Timeout, 'g', -1, 64))
		if !ok {
			return 0, fmt.Errorf("endpoint %q: timeout must be a positive number of seconds", name)
		}
		timeout = d
	}
	switch t := strings.ToLower(e.AuthType); t {
	case "", "none", "api_key":
	case "bearer":
	case "basic":
		if e.AuthUsername == "" {
			return 0, fmt.Errorf("endpoint %q: auth_type basic needs auth_username", name)
		}
	case "custom":
		if e.AuthHeaderName == "" {
			return 0, fmt.Errorf("endpoint %q: auth_type custom needs auth_header_name", name)
		}
	default:
		return 0, fmt.Errorf("endpoint %q: auth_type is not bearer, api_key, basic or custom", name)
	}
	if t := strings.ToLower(e.AuthType); (t == "bearer" || t == "api_key" || t == "custom") && e.AuthToken == "" {
		return 0, fmt.Errorf("endpoint %q: auth_type %s needs auth_token", name, t)
	}
	return timeout, nil
}

// endpoint writes an endpoint of OPENHQM_PROXY__ENDPOINTS.
func (w *envHCL) endpoint(name string, e envEndpoint, timeout time.Duration, timeoutFrom string) {
	const from = "OPENHQM_PROXY__ENDPOINTS"
	w.within = fmt.Sprintf("endpoint %q", name)
	defer func() { w.within = "" }()
	w.open("endpoint", from, name)
	w.attr("url", cty.StringVal(e.URL), from)
	if e.Timeout != nil {
		timeoutFrom = from
	}
	w.attr("timeout", cty.StringVal(timeout.String()), timeoutFrom)
	if len(e.Headers) > 0 {
		h := map[string]cty.Value{}
		for k, v := range e.Headers {
			h[k] = cty.StringVal(v)
		}
		w.attr("headers", cty.ObjectVal(h), from)
	}
	str := func(n, v string) { w.attr(n, cty.StringVal(v), from) }
	switch strings.ToLower(e.AuthType) {
	case "bearer":
		w.open("auth", from)
		str("type", "bearer")
		str("token", e.AuthToken)
		w.close()
	case "api_key":
		w.open("auth", from)
		str("type", "api_key")
		str("token", e.AuthToken)
		if e.AuthHeaderName != "" {
			str("header", e.AuthHeaderName)
		}
		w.close()
	case "custom":
		w.open("auth", from)
		str("type", "header")
		str("header", e.AuthHeaderName)
		str("token", e.AuthToken)
		w.close()
	case "basic":
		w.open("auth", from)
		str("type", "basic")
		str("username", e.AuthUsername)
		str("password", e.AuthPassword)
		w.close()
	}
	w.close()
}

// open starts a block whose definition line belongs to variable from.
func (w *envHCL) open(typ, from string, labels ...string) {
	w.pad()
	start := w.buf.Len()
	w.buf.WriteString(typ)
	for _, l := range labels {
		w.buf.WriteByte(' ')
		w.buf.Write(hclwrite.TokensForValue(cty.StringVal(l)).Bytes())
	}
	w.buf.WriteString(" {\n")
	w.lines(start, from)
	w.indent++
}

func (w *envHCL) close() {
	w.indent--
	w.pad()
	w.buf.WriteString("}\n")
	w.line++
}

// attr writes an attribute whose value came from variable from ("" for a
// value of the translation itself). hclwrite quotes and escapes the value, so
// a variable cannot inject HCL or template sequences.
func (w *envHCL) attr(name string, v cty.Value, from string) {
	w.pad()
	start := w.buf.Len()
	w.buf.WriteString(name)
	w.buf.WriteString(" = ")
	w.buf.Write(hclwrite.TokensForValue(v).Bytes())
	w.buf.WriteByte('\n')
	w.lines(start, from)
}

// lines records that the lines written since offset start came from
// variable from.
func (w *envHCL) lines(start int, from string) {
	n := bytes.Count(w.buf.Bytes()[start:], []byte{'\n'})
	for range n {
		if from != "" {
			w.from[w.line] = envFrom{from, w.within}
		}
		w.line++
	}
}

func (w *envHCL) pad() {
	for range w.indent {
		w.buf.WriteString("  ")
	}
}

// errorOf turns the builder's errors into one error per variable, each
// prefixed with the variable's name.
func (w *envHCL) errorOf(diags hcl.Diagnostics) error {
	seen := map[string]bool{}
	var errs []error
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		name := "OPENHQM_* variables"
		var f envFrom
		if d.Subject != nil {
			f = w.from[d.Subject.Start.Line]
		}
		if f.variable != "" {
			name = f.variable
		}
		if f.within != "" {
			name += ": " + f.within
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		msg := d.Detail
		if msg == "" {
			msg = d.Summary
		}
		errs = append(errs, fmt.Errorf("%s: %s", name, msg))
	}
	return errors.Join(errs...)
}

// envSeconds parses a positive number of seconds.
func envSeconds(v string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || f*float64(time.Second) >= math.MaxInt64 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// jsonReason is a JSON error without the input it quotes.
func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%s cannot be a JSON %s", te.Field, te.Value)
		}
		return fmt.Sprintf("an endpoint is a JSON %s, not an object", te.Value)
	}
	return "invalid JSON"
}

func parseEnvBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on", "t", "y":
		return true, true
	case "0", "false", "no", "off", "f", "n":
		return false, true
	}
	return false, false
}
