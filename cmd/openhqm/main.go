// Command openhqm is an HTTP queue manager that sits in front of applications
// that cannot be changed: it proxies requests synchronously or turns them into
// queued jobs that a worker pool replays later, as a declarative HCL
// configuration says.
//
// Subcommands: serve, worker, validate, fmt, schema, jobs, version, help. Exit codes
// are the same everywhere: 0 success, 1 a failure the command is about (an
// invalid configuration, unformatted files), 2 a usage or I/O error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/agext/levenshtein"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// defaultConfigDir is the configuration path when neither a PATH argument nor
// $OPENHQM_CONFIG is given; a ConfigMap is usually mounted there.
const defaultConfigDir = "/etc/openhqm"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one subcommand of openhqm.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
	// serves: SIGINT and SIGTERM end ctx for a graceful stop. Other
	// commands keep the default, so that a cancelled CI job stops them.
	serves bool
}

func commands() []command {
	return []command{
		{"serve", "run the ingress (sync proxy, async submit, results API) and, when configured, the worker pool",
			func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
				return serveMain(ctx, args, stdout, stderr)
			}, true},
		{"worker", "run a standalone worker pool that replays queued jobs against the endpoints",
			func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
				return workerMain(ctx, args, stdout, stderr)
			}, true},
		{"validate", "check configuration files offline and report located diagnostics",
			func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
				return validateMain(args, stdout, stderr)
			}, false},
		{"fmt", "rewrite configuration files in canonical HCL style",
			func(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
				return fmtMain(args, stdin, stdout, stderr)
			}, false},
		{"schema", "print the schema of the configuration (JSON Schema or Markdown)",
			func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
				return schemaMain(args, stdout, stderr)
			}, false},
		{"jobs", "inspect queues and jobs: stats, ls, show, cancel, redrive, purge",
			func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
				return jobsMain(ctx, args, stdin, stdout, stderr)
			}, false},
		{"version", "print the version, commit and Go version",
			func(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
				return versionMain(args, stdout, stderr)
			}, false},
	}
}

// run dispatches args (without the program name) to a subcommand and returns
// the process exit code. It never calls os.Exit, so tests run it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return helpMain(ctx, rest, stdout, stderr)
	case "-v", "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			if c.serves {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			return c.run(ctx, rest, stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "openhqm: unknown command %q%s\n\n", name, suggestCommand(name))
	writeUsage(stderr)
	return exitUsage
}

// helpMain prints the overview, or the usage of one command: `openhqm help
// validate` is the same as `openhqm validate -h`.
func helpMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, []string{"-h"}, strings.NewReader(""), stdout, stdout)
		}
	}
	fmt.Fprintf(stderr, "openhqm help: unknown command %q%s\n", args[0], suggestCommand(args[0]))
	return exitUsage
}

func writeUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: openhqm <command> [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "help", "show help for a command")
	fmt.Fprintf(w, "\nPATH is a file or a directory (every *.hcl and *.hcl.json in it, merged).\n"+
		"Without one, $OPENHQM_CONFIG is used, then %s.\n"+
		"Run 'openhqm <command> -h' for the flags of a command.\n", defaultConfigDir)
}

func suggestCommand(name string) string {
	best, bestDist := "", 3
	for _, c := range append(commands(), command{name: "help"}) {
		if d := levenshtein.Distance(name, c.name, nil); d < bestDist {
			best, bestDist = c.name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// configPaths returns the PATH arguments, or the default configuration path
// when there are none: $OPENHQM_CONFIG, then /etc/openhqm.
func configPaths(args []string, lookupEnv func(string) (string, bool)) []string {
	if len(args) > 0 {
		return args
	}
	if p, ok := lookupEnv("OPENHQM_CONFIG"); ok && p != "" {
		return []string{p}
	}
	return []string{defaultConfigDir}
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints usage (the synopsis, then the flags) to w.
func newFlagSet(name, synopsis string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("openhqm "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: openhqm %s\n", synopsis)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseInterspersed parses flags that may appear before, between or after the
// positional arguments (`openhqm validate conf/ --strict`), and returns the
// positional arguments. "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// isHelp reports whether err is the flag package's answer to -h.
func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

// oneOf checks a flag value against its allowed values.
func oneOf(flagName, value string, allowed ...string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return fmt.Errorf("invalid value %q for --%s: must be one of %s", value, flagName, strings.Join(allowed, ", "))
}
