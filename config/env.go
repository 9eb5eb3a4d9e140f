package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"
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
// variables (DESIGN §2 "Seed compatibility"). ok is false when none is set.
// The result has a sync catch-all route "/" to the default endpoint (when the
// proxy is enabled), a submit_api on a queue named "requests" (Redis stream
// "openhqm-requests", group "openhqm-workers", dead letter "openhqm-dlq"),
// results in Redis (OPENHQM_CACHE__TYPE=redis) or memory, the worker's batch
// size, timeout (endpoint timeout) and retries (max_retries+1 attempts), and
// worker.embedded false when the queue is Redis (the original runs separate
// workers). A bad value is an error naming the variable. lookup nil means no
// variable is set.
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
	get := func(n string) string { return strings.TrimSpace(vals[n]) }
	bad := func(n string, format string, args ...any) error {
		return fmt.Errorf("%s=%q: %s", n, vals[n], fmt.Sprintf(format, args...))
	}
	c := baseConfig()

	host, port := get("OPENHQM_SERVER__HOST"), get("OPENHQM_SERVER__PORT")
	if port == "" {
		port = "8000"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return nil, true, bad("OPENHQM_SERVER__PORT", "not a port number")
	}
	if host == "0.0.0.0" {
		host = ""
	}
	c.Server.Listen = net.JoinHostPort(host, port)
	if err := parseListen(c.Server.Listen); err != nil {
		return nil, true, bad("OPENHQM_SERVER__HOST", "%v", err)
	}
	// The original's worker serves its /health and /metrics where its API
	// would listen: its manifests probe that port.
	c.Worker.Listen = c.Server.Listen

	proxy := false
	if v := get("OPENHQM_PROXY__ENABLED"); v != "" {
		b, ok := parseEnvBool(v)
		if !ok {
			return nil, true, bad("OPENHQM_PROXY__ENABLED", "not a boolean; use true or false")
		}
		proxy = b
	}
	timeout := 30 * time.Second
	if v := get("OPENHQM_WORKER__TIMEOUT_SECONDS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return nil, true, bad("OPENHQM_WORKER__TIMEOUT_SECONDS", "not a positive number of seconds")
		}
		timeout = time.Duration(f * float64(time.Second))
	}
	if v := get("OPENHQM_PROXY__ENDPOINTS"); v != "" {
		var eps map[string]envEndpoint
		if err := json.Unmarshal([]byte(v), &eps); err != nil {
			return nil, true, bad("OPENHQM_PROXY__ENDPOINTS", "not a JSON object of endpoints: %v", err)
		}
		for _, name := range sortedNames(eps) {
			ep, err := envEndpointOf(name, eps[name], timeout)
			if err != nil {
				return nil, true, fmt.Errorf("OPENHQM_PROXY__ENDPOINTS: %w", err)
			}
			c.Endpoints[name] = ep
		}
	}
	def := ""
	if v := get("OPENHQM_PROXY__DEFAULT_ENDPOINT"); v != "" {
		if _, named := c.Endpoints[v]; named {
			def = v
		} else if strings.Contains(v, "://") {
			u, err := parseHTTPURL(v)
			if err != nil {
				return nil, true, bad("OPENHQM_PROXY__DEFAULT_ENDPOINT", "%v", err)
			}
			def = "default"
			for c.Endpoints[def] != nil {
				def += "_"
			}
			c.Endpoints[def] = &Endpoint{Name: def, URL: u, Timeout: timeout, Auth: Auth{Type: AuthNone}}
		} else {
			return nil, true, bad("OPENHQM_PROXY__DEFAULT_ENDPOINT", "neither a URL nor the name of an endpoint in OPENHQM_PROXY__ENDPOINTS (%s)", quoteList(sortedNames(c.Endpoints)))
		}
	} else if len(c.Endpoints) == 1 {
		def = sortedNames(c.Endpoints)[0]
	}
	if def == "" {
		if len(c.Endpoints) == 0 {
			return nil, true, fmt.Errorf("no endpoint to forward to: set OPENHQM_PROXY__DEFAULT_ENDPOINT to the app's URL (or OPENHQM_PROXY__ENDPOINTS)")
		}
		return nil, true, fmt.Errorf("OPENHQM_PROXY__DEFAULT_ENDPOINT is not set and OPENHQM_PROXY__ENDPOINTS defines several endpoints (%s); name the default one", quoteList(sortedNames(c.Endpoints)))
	}

	retry := defaultRetry()
	if v := get("OPENHQM_WORKER__MAX_RETRIES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 99 {
			return nil, true, bad("OPENHQM_WORKER__MAX_RETRIES", "not a number from 0 to 99")
		}
		retry.Attempts = n + 1
	}
	if v := get("OPENHQM_WORKER__BATCH_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, true, bad("OPENHQM_WORKER__BATCH_SIZE", "not a positive number")
		}
		c.Worker.BatchSize = n
	}

	q := memoryQueue("requests")
	switch t := strings.ToLower(get("OPENHQM_QUEUE__TYPE")); t {
	case "", "memory":
	case "redis":
		u := get("OPENHQM_QUEUE__REDIS_URL")
		if u == "" {
			u = "redis://localhost:6379"
		}
		if err := parseRedisURL(u); err != nil {
			return nil, true, bad("OPENHQM_QUEUE__REDIS_URL", "%v", err)
		}
		q.Backend = BackendRedis
		q.Redis = &RedisQueue{URL: u, Stream: "openhqm-requests", Group: "openhqm-workers"}
		c.Worker.Embedded = false
	default:
		return nil, true, bad("OPENHQM_QUEUE__TYPE", "not supported from environment variables (memory or redis); write an HCL configuration for other queues")
	}
	q.DeadLetter = "openhqm-dlq"
	for _, ep := range c.Endpoints {
		// A job must outlive its longest request, or it is redelivered while running.
		q.Lease = max(q.Lease, ep.Timeout+30*time.Second)
	}
	c.Queues[q.Name] = q

	switch t := strings.ToLower(get("OPENHQM_CACHE__TYPE")); t {
	case "", "memory":
	case "redis":
		u := get("OPENHQM_CACHE__REDIS_URL")
		if u == "" {
			u = get("OPENHQM_QUEUE__REDIS_URL")
		}
		if u == "" {
			u = "redis://localhost:6379"
		}
		if err := parseRedisURL(u); err != nil {
			return nil, true, bad("OPENHQM_CACHE__REDIS_URL", "%v", err)
		}
		c.Results.Backend, c.Results.RedisURL = BackendRedis, u
	default:
		return nil, true, bad("OPENHQM_CACHE__TYPE", "not supported; use memory or redis")
	}

	if v := get("OPENHQM_MONITORING__LOG_LEVEL"); v != "" {
		lvl := map[string]string{"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error", "critical": "error"}[strings.ToLower(v)]
		if lvl == "" {
			return nil, true, bad("OPENHQM_MONITORING__LOG_LEVEL", "use DEBUG, INFO, WARNING or ERROR")
		}
		c.Telemetry.LogLevel = lvl
	}
	if v := get("OPENHQM_MONITORING__METRICS_ENABLED"); v != "" {
		b, ok := parseEnvBool(v)
		if !ok {
			return nil, true, bad("OPENHQM_MONITORING__METRICS_ENABLED", "not a boolean; use true or false")
		}
		c.Telemetry.Metrics = b
	}

	c.SubmitAPI = &SubmitAPI{Endpoint: def, Queue: q.Name, Retry: retry}
	if proxy {
		c.Routes = []*Route{{Name: "proxy", Match: Match{PathPrefix: "/"}, Mode: ModeSync, Endpoint: def, Retry: retry, Timeout: c.Endpoints[def].Timeout}}
	}
	var srcs []source
	names := sortedNames(vals)
	for _, n := range names {
		srcs = append(srcs, source{n, []byte(vals[n])})
	}
	c.Digest = digest(srcs)
	return c, true, nil
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

func envEndpointOf(name string, e envEndpoint, timeout time.Duration) (*Endpoint, error) {
	if name == "" {
		return nil, fmt.Errorf("an endpoint has an empty name")
	}
	u, err := parseHTTPURL(e.URL)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: url: %w", name, err)
	}
	ep := &Endpoint{Name: name, URL: u, Timeout: timeout, Auth: Auth{Type: AuthNone}}
	if e.Timeout != nil {
		if *e.Timeout <= 0 {
			return nil, fmt.Errorf("endpoint %q: timeout must be a positive number of seconds", name)
		}
		ep.Timeout = time.Duration(*e.Timeout * float64(time.Second))
	}
	keys := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !IsToken(k) || !ValidHeaderValue(e.Headers[k]) {
			return nil, fmt.Errorf("endpoint %q: invalid header %q", name, k)
		}
		ep.Headers = append(ep.Headers, Header{Name: textproto.CanonicalMIMEHeaderKey(k), Value: e.Headers[k]})
	}
	hdr := e.AuthHeaderName
	if hdr != "" && !IsToken(hdr) {
		return nil, fmt.Errorf("endpoint %q: auth_header_name %q is not a header name", name, hdr)
	}
	switch strings.ToLower(e.AuthType) {
	case "", "none":
	case "bearer":
		ep.Auth = Auth{Type: AuthBearer, Token: e.AuthToken}
	case "api_key":
		if hdr == "" {
			hdr = "X-API-Key"
		}
		ep.Auth = Auth{Type: AuthAPIKey, Token: e.AuthToken, Header: textproto.CanonicalMIMEHeaderKey(hdr)}
	case "basic":
		ep.Auth = Auth{Type: AuthBasic, Username: e.AuthUsername, Password: e.AuthPassword}
	case "custom":
		if hdr == "" {
			return nil, fmt.Errorf("endpoint %q: auth_type custom needs auth_header_name", name)
		}
		ep.Auth = Auth{Type: AuthHeader, Token: e.AuthToken, Header: textproto.CanonicalMIMEHeaderKey(hdr)}
	default:
		return nil, fmt.Errorf("endpoint %q: auth_type %q is not bearer, api_key, basic or custom", name, e.AuthType)
	}
	if (ep.Auth.Type == AuthBearer || ep.Auth.Type == AuthAPIKey || ep.Auth.Type == AuthHeader) && ep.Auth.Token == "" {
		return nil, fmt.Errorf("endpoint %q: auth_type %s needs auth_token", name, e.AuthType)
	}
	if ep.Auth.Type == AuthBasic && ep.Auth.Username == "" {
		return nil, fmt.Errorf("endpoint %q: auth_type basic needs auth_username", name)
	}
	return ep, nil
}
