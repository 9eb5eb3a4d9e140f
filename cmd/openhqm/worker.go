package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/openhqm/openhqm/internal/process"
)

const workerSynopsis = `worker [-c PATH] [--name NAME | NAME] [--listen ADDR]

Runs a worker pool alone (the separately scaled Deployment). NAME is the
stable consumer name (default $POD_NAME, then the hostname): a restarted
worker with the same name takes back its own pending jobs at once. The
worker serves /health, /-/healthz, /-/readyz, /metrics, /-/config and
POST /-/reload on --listen, else worker.listen.`

// workerMain runs `openhqm worker` until ctx is done (SIGINT or SIGTERM).
func workerMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("worker", workerSynopsis, stderr)
	var path, name, listen string
	fs.StringVar(&path, "c", "", "configuration file or directory")
	fs.StringVar(&path, "config", "", "same as -c")
	fs.StringVar(&name, "name", "", "stable consumer name (default $POD_NAME, then the hostname)")
	fs.StringVar(&listen, "listen", "", "address of /health and /metrics (default worker.listen)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if isHelp(err) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case len(pos) > 1:
		fmt.Fprintf(stderr, "openhqm worker: too many arguments %q\n", pos)
		return exitUsage
	case len(pos) == 1 && name != "" && pos[0] != name:
		fmt.Fprintf(stderr, "openhqm worker: the name is given twice (%q and --name %q)\n", pos[0], name)
		return exitUsage
	case len(pos) == 1:
		name = pos[0]
	}
	return runProcess(ctx, process.Options{Role: process.Worker, Name: consumerName(name, os.LookupEnv), Listen: listen}, path, stderr)
}
