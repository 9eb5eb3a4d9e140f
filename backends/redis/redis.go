package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
)

// connect returns client, or a new client for url with bounded timeouts so
// that an outage answers quickly instead of hanging a submit.
func connect(url string, client goredis.UniversalClient) (goredis.UniversalClient, bool, error) {
	if client != nil {
		return client, false, nil
	}
	if url == "" {
		return nil, false, errors.New("redis: a URL or a Client is required")
	}
	o, err := goredis.ParseURL(url)
	if err != nil {
		return nil, false, fmt.Errorf("redis: parse url: %w", err)
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 2 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 2 * time.Second
	}
	if o.DialerRetries == 0 {
		o.DialerRetries = 2 // with MaxRetries 1: an outage answers within about half a second
	}
	if !strings.Contains(url, "max_retries") {
		o.MaxRetries = 1
	}
	return goredis.NewClient(o), true, nil
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
