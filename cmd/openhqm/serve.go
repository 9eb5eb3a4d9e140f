package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/hcl/v2"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/process"
)

const serveSynopsis = `serve [-c PATH]

Runs the ingress: the sync proxy, async submits, the job API and the admin
endpoints, and the worker pool in-process when worker.embedded is true.
PATH is a file or a directory of *.hcl / *.hcl.json files. Without -c:
$OPENHQM_CONFIG, then /etc/openhqm, then the original OpenHQM's OPENHQM_*
variables, then the embedded default configuration.`

// serveMain runs `openhqm serve` until ctx is done (SIGINT or SIGTERM).
func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", serveSynopsis, stderr)
	var path string
	fs.StringVar(&path, "c", "", "configuration file or directory")
	fs.StringVar(&path, "config", "", "same as -c")
	if err := fs.Parse(args); err != nil {
		if isHelp(err) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "openhqm serve: unexpected argument %q (use -c PATH)\n", fs.Arg(0))
		return exitUsage
	}
	return runProcess(ctx, process.Options{Role: process.Serve, Name: consumerName("", os.LookupEnv)}, path, stderr)
}

// runProcess loads the configuration for opts, starts the process and runs
// it until ctx is done. It prints why it cannot start to stderr and returns
// the exit code.
func runProcess(ctx context.Context, opts process.Options, path string, stderr io.Writer) int {
	role := string(opts.Role)
	opts.Source = process.ResolveSource(path, defaultConfigDir, os.LookupEnv)
	opts.LookupEnv = os.LookupEnv
	opts.Log = stderr
	opts.Version, _ = buildVersion()
	cfg, warnings, code := loadConfig(opts.Source, role, exitFailure, stderr)
	if cfg == nil {
		return code
	}
	opts.Config, opts.Warnings = cfg, warnings
	p, err := process.New(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "openhqm %s: cannot start: %v\n", role, err)
		return exitFailure
	}
	return p.Run(ctx, nil)
}

// loadConfig loads src for the command name, or prints why it cannot (an
// invalid configuration with its diagnostics) and returns a nil
// configuration with the exit code: invalid for an invalid configuration,
// exitUsage for any other error.
func loadConfig(src process.Source, name string, invalid int, stderr io.Writer) (*config.Config, hcl.Diagnostics, int) {
	cfg, warnings, err := src.Load(os.LookupEnv)
	if err == nil {
		return cfg, warnings, exitOK
	}
	var ce *process.ConfigError
	code := exitUsage
	if errors.As(err, &ce) {
		if len(ce.Diagnostics) > 0 {
			config.WriteText(stderr, ce.Files, ce.Diagnostics, false)
		}
		code = invalid
	}
	fmt.Fprintf(stderr, "openhqm %s: %v\n", name, err)
	return nil, nil, code
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
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "openhqm"
}
