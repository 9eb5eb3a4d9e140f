package config

import (
	"net/url"
	"time"
)

// Default returns the embedded configuration `openhqm serve` uses when no file
// and no OPENHQM_* variable is given: listen :8000, endpoint "app" at
// http://127.0.0.1:8080, memory queue "default", memory results, submit_api on
// them, route "default" taking every path in auto mode (so `Prefer:
// respond-async` makes a job), and the embedded worker. Each call returns a
// new value the caller owns.
func Default() *Config {
	c := baseConfig()
	c.Endpoints["app"] = &Endpoint{Name: "app", URL: &url.URL{Scheme: "http", Host: "127.0.0.1:8080"}, Timeout: 30 * time.Second, Auth: Auth{Type: AuthNone}}
	c.Queues["default"] = memoryQueue("default")
	c.Routes = []*Route{{Name: "default", Match: Match{PathPrefix: "/"}, Mode: ModeAuto, Endpoint: "app", Queue: "default", Retry: defaultRetry(), Timeout: 30 * time.Second}}
	c.SubmitAPI = &SubmitAPI{Endpoint: "app", Queue: "default", Retry: defaultRetry()}
	c.Digest = digest([]source{{"<default>", []byte("openhqm default configuration v1")}})
	return c
}

// baseConfig is a configuration with every default filled in and nothing
// defined.
func baseConfig() *Config {
	return &Config{
		Server:    Server{Listen: ":8000", MaxBodySize: 10 << 20, ReadTimeout: 30 * time.Second, IdleTimeout: 90 * time.Second},
		Endpoints: map[string]*Endpoint{},
		Queues:    map[string]*Queue{},
		Results:   Results{Backend: BackendMemory, TTL: time.Hour, MaxEntries: 100000, Prefix: "openhqm:"},
		Worker:    Worker{Embedded: true, Concurrency: 16, BatchSize: 10, Drain: 30 * time.Second, Listen: ":9090"},
		Telemetry: Telemetry{LogLevel: "info", LogFormat: "json", Metrics: true},
	}
}

func memoryQueue(name string) *Queue {
	return &Queue{Name: name, Backend: BackendMemory, MaxDepth: 100000, Lease: 60 * time.Second, DeadLetter: name + "-dlq", DeadLetterMax: 10000}
}

func defaultRetry() Retry {
	return Retry{Attempts: 3, Backoff: "exponential", Initial: time.Second, Max: time.Minute, On: []RetryOn{RetryConnect, RetryTimeout, Retry5xx, Retry429}}
}
