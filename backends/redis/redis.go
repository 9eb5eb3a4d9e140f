package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
)

// Sentinel names a primary monitored by Redis Sentinel: the client asks the
// sentinels where the primary is, and again after a failover.
type Sentinel struct {
	MasterName string
	Addrs      []string // host:port of the sentinels
	Username   string   // ACL user of the Redis servers
	Password   string   // password of the Redis servers and of the sentinels
}

// Cluster names some nodes of a Redis Cluster; the client discovers the
// others, and follows slots as they move or fail over.
type Cluster struct {
	Addrs    []string // host:port
	Username string
	Password string
}

// Conn is how to reach Redis: exactly one of URL, Sentinel and Cluster.
type Conn struct {
	URL      string // redis://, rediss:// or unix:// URL
	Sentinel *Sentinel
	Cluster  *Cluster
	TLS      *tls.Config // nil: plaintext, unless URL is rediss://
}

// Client timeouts: bounded, so that an outage answers quickly instead of
// hanging a submit.
const (
	dialTimeout  = time.Second
	readTimeout  = 2 * time.Second
	writeTimeout = 2 * time.Second
)

// connect returns client, or a new client for c: a plain client for a URL
// (the single-node path of earlier releases, unchanged), a failover client
// for a sentinel, a cluster client for a cluster.
func connect(c Conn, client goredis.UniversalClient) (goredis.UniversalClient, bool, error) {
	if client != nil {
		return client, false, nil
	}
	switch {
	case c.Sentinel != nil:
		s := c.Sentinel
		return goredis.NewFailoverClient(&goredis.FailoverOptions{
			MasterName: s.MasterName, SentinelAddrs: s.Addrs,
			Username: s.Username, Password: s.Password, SentinelUsername: s.Username, SentinelPassword: s.Password,
			TLSConfig:   c.TLS,
			DialTimeout: dialTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout,
			MaxRetries: 1, DialerRetries: 2,
		}), true, nil
	case c.Cluster != nil:
		cl := c.Cluster
		return goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs: cl.Addrs, Username: cl.Username, Password: cl.Password,
			TLSConfig:   c.TLS,
			DialTimeout: dialTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout,
			MaxRetries: 1, DialerRetries: 2, MaxRedirects: 3,
		}), true, nil
	}
	url := c.URL
	if url == "" {
		return nil, false, errors.New("redis: a URL, a sentinel, a cluster or a Client is required")
	}
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, false, fmt.Errorf("redis: parse url: %w", err)
	}
	if c.TLS != nil {
		o.TLSConfig = c.TLS
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = dialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = readTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = writeTimeout
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 2 // with MaxRetries 1: an outage answers within about half a second
	}
	if !strings.Contains(url, "max_retries") {
		o.MaxRetries = 1
	}
	return goredis.NewClient(o), true, nil
}

// isCluster reports whether rdb talks to a Redis Cluster, where keys of
// different hash tags live on different nodes.
func isCluster(rdb goredis.UniversalClient) bool {
	_, ok := rdb.(*goredis.ClusterClient)
	return ok
}

// classify wraps errors that mean "Redis cannot take this now" with
// backends.ErrUnavailable (the router answers 503); a server reply that is a
// real error (a bug, a wrong type) stays as it is.
func classify(err error) error {
	if err == nil || errors.Is(err, goredis.Nil) || errors.Is(err, context.Canceled) {
		return err
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		for _, p := range []string{"LOADING", "BUSY", "MASTERDOWN", "READONLY", "OOM", "TRYAGAIN", "CLUSTERDOWN"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("%w: %w", backends.ErrUnavailable, err)
			}
		}
		return err
	}
	return fmt.Errorf("%w: %w", backends.ErrUnavailable, err)
}

func isNoGroup(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NOGROUP")
}

// isWrongType reports a command run on a key of another type: a record of
// an earlier release (a hash) read as a string.
func isWrongType(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")
}
