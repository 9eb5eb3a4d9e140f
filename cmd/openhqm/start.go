package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
)

// newApp loads the configuration and builds the parts every role shares:
// logger, metrics registry, endpoint clients and the backend set. It prints
// what is wrong to stderr and returns an exit code when it cannot start.
func newApp(role, flagPath, name string, stderr io.Writer) (*app, int) {
	src := resolveSource(flagPath, os.LookupEnv)
	cfg, files, diags, err := src.load(os.LookupEnv)
	switch {
	case errors.Is(err, errInvalidConfig):
		if len(diags) > 0 {
			writeDiagnosticsText(stderr, files, diags, false)
		}
		fmt.Fprintf(stderr, "openhqm %s: %v\n", role, err)
		return nil, 1
	case err != nil:
		fmt.Fprintf(stderr, "openhqm %s: %v\n", role, err)
		return nil, 2
	}
	log, level := newLogger(stderr, cfg.Telemetry)
	log = log.With("role", role)
	for _, d := range diags {
		log.Warn("configuration warning", "diagnostic", d.Error())
	}
	if src.kind == "file" {
		if set := originalEnv(os.LookupEnv); len(set) > 0 {
			log.Warn("OPENHQM_* variables are ignored: the configuration comes from files", "variables", set)
		}
		for _, p := range src.paths {
			if w := config.SubPathWarning(p); w != "" {
				log.Warn(w)
			}
		}
	}
	reg := newRegistry()
	a := &app{
		role:     role,
		name:     name,
		src:      src,
		lookup:   os.LookupEnv,
		log:      log,
		level:    level,
		reg:      reg,
		metrics:  newReloadMetrics(reg),
		ups:      upstream.NewPool(upstream.PoolOptions{Logger: log, Registry: reg}),
		set:      &backendSet{log: log, consumer: name},
		stopping: make(chan struct{}),
	}
	a.first = cfg
	a.cfg.Store(cfg)
	log.Info("configuration loaded", "source", src.String(), "digest", cfg.Digest)
	return a, 0
}

// sighup returns a channel that receives a value on every SIGHUP until ctx is done.
func sighup(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() { // owned by ctx: stops with it
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// hostname is the default consumer name of a worker when neither --name nor
// $POD_NAME is given.
func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "openhqm"
}

// consumerName is the stable name of this process toward the queues: the
// --name flag, else $POD_NAME, else the hostname. A restarted worker with the
// same name takes back its own pending jobs at once.
func consumerName(flagName string, lookup func(string) (string, bool)) string {
	if flagName != "" {
		return flagName
	}
	if v, ok := lookup("POD_NAME"); ok && v != "" {
		return v
	}
	return hostname()
}
