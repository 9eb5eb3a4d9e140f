package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/internal/jobs"
	"github.com/openhqm/openhqm/internal/process"
)

const jobsSynopsis = `jobs <stats|ls|show|cancel|redrive|purge> [-c PATH] [--format text|json] [flags] [args]

Operator tooling on the queues and the result store of a configuration
(the same one serve reads), talking to the backends directly:

  stats                                   per queue: waiting, in flight, dead, oldest age
  ls [--queue Q] [--state waiting|in_flight|dead|failed|completed|cancelled] [--route R] [--limit N]
  show ID [--body]                        one job: request, each attempt's outcome, result status
  cancel ID                               cancel a job that has not started
  redrive --queue Q (--all | ID...) [--route R]
                                          send dead letters back with a fresh attempt budget
  purge --queue Q --dead [--older-than D] [--yes]
                                          drop dead letters

The memory backend lives in the serving process: use its admin pages
(/-/queues, /-/jobs) instead. Exit codes: 0 done, 1 refused or failed,
2 usage or configuration error.`

// jobsFlags are the flags every jobs subcommand takes, and its own.
type jobsFlags struct {
	path, format         string
	queue, state, route  string
	limit                int
	body, all, dead, yes bool
	olderThan            time.Duration
}

func jobsMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintf(stdout, "Usage: openhqm %s\n", jobsSynopsis)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub, args := args[0], args[1:]
	var f jobsFlags
	fs := newFlagSet("jobs "+sub, jobsSynopsis, stderr)
	fs.StringVar(&f.path, "c", "", "configuration file or directory")
	fs.StringVar(&f.path, "config", "", "same as -c")
	fs.StringVar(&f.format, "format", "text", "output format: text or json")
	switch sub {
	case "stats", "cancel":
	case "ls":
		fs.StringVar(&f.queue, "queue", "", "only this queue")
		fs.StringVar(&f.state, "state", "", "only jobs in this state: waiting, in_flight, dead (in a queue) or failed, completed, cancelled (records)")
		fs.StringVar(&f.route, "route", "", "only jobs of this route")
		fs.IntVar(&f.limit, "limit", 100, "at most this many jobs")
	case "show":
		fs.BoolVar(&f.body, "body", false, "print the request body too")
	case "redrive":
		fs.StringVar(&f.queue, "queue", "", "the queue whose dead letters go back (required)")
		fs.BoolVar(&f.all, "all", false, "every dead letter (or give IDs)")
		fs.StringVar(&f.route, "route", "", "only dead letters of this route")
	case "purge":
		fs.StringVar(&f.queue, "queue", "", "the queue whose dead letters are dropped (required)")
		fs.BoolVar(&f.dead, "dead", false, "drop dead letters (required: the only thing purge drops)")
		fs.DurationVar(&f.olderThan, "older-than", 0, "only dead letters older than this, such as 24h")
		fs.BoolVar(&f.yes, "yes", false, "do not ask (required when a terminal is attached)")
	default:
		fmt.Fprintf(stderr, "openhqm jobs: unknown subcommand %q (stats, ls, show, cancel, redrive, purge)\n", sub)
		return exitUsage
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if isHelp(err) {
			return exitOK
		}
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "openhqm jobs %s: %s\n", sub, fmt.Sprintf(format, a...))
		return exitUsage
	}
	if err := oneOf("--format", f.format, "text", "json"); err != nil {
		return usage("%v", err)
	}
	switch sub {
	case "stats", "ls", "purge":
		if len(pos) > 0 {
			return usage("unexpected argument %q", pos[0])
		}
	case "show", "cancel":
		if len(pos) != 1 {
			return usage("give one job id")
		}
	case "redrive":
		if f.all == (len(pos) > 0) {
			return usage("give either --all or one or more job ids")
		}
	}
	if (sub == "redrive" || sub == "purge") && f.queue == "" {
		return usage("--queue is required")
	}
	if sub == "purge" {
		if !f.dead {
			return usage("--dead is required: purge only drops dead letters")
		}
		if attended(stdin) && !f.yes {
			return usage("this drops dead letters for good; run again with --yes")
		}
	}

	cfg, _, code := loadConfig(process.ResolveSource(f.path, defaultConfigDir, os.LookupEnv), "jobs", exitUsage, stderr)
	if cfg == nil {
		return code
	}
	var only []string
	if f.queue != "" {
		only = []string{f.queue}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	svc, closeAll, err := process.OpenJobs(c, cfg, only, log)
	if err != nil {
		fmt.Fprintf(stderr, "openhqm jobs %s: %v\n", sub, err)
		if errors.Is(err, jobs.ErrNoQueue) {
			return exitUsage
		}
		return exitFailure
	}
	defer closeAll()
	out := output{w: stdout, json: f.format == "json"}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "openhqm jobs %s: %v\n", sub, err)
		return exitFailure
	}
	switch sub {
	case "stats":
		rep, err := svc.Stats(c)
		out.stats(rep)
		if err != nil {
			return fail(err)
		}
	case "ls":
		l, err := svc.List(c, jobs.ListOptions{Queue: f.queue, State: f.state, Route: f.route, Limit: f.limit})
		if err != nil {
			return fail(err)
		}
		out.list(l)
	case "show":
		d, err := svc.Show(c, pos[0], f.body)
		if err != nil {
			return fail(err)
		}
		out.show(d)
	case "cancel":
		r, err := svc.Cancel(c, pos[0])
		if err != nil {
			return fail(refusal(pos[0], err))
		}
		out.done(map[string]any{"id": r.ID, "status": r.Status}, fmt.Sprintf("job %s cancelled", r.ID))
	case "redrive":
		o := jobs.RedriveOptions{Queue: f.queue, Route: f.route}
		if !f.all {
			o.IDs = pos
		}
		n, err := svc.Redrive(c, o)
		if err != nil {
			return fail(fmt.Errorf("%w (%d sent back before the error)", err, n))
		}
		out.done(map[string]any{"queue": f.queue, "redriven": n}, fmt.Sprintf("%d dead-lettered jobs sent back to queue %s", n, f.queue))
	case "purge":
		n, err := svc.Purge(c, f.queue, f.olderThan)
		if err != nil {
			return fail(err)
		}
		out.done(map[string]any{"queue": f.queue, "purged": n}, fmt.Sprintf("%d dead letters dropped from queue %s", n, f.queue))
	}
	return exitOK
}

// refusal says in words why a cancel was refused.
func refusal(id string, err error) error {
	switch {
	case errors.Is(err, backends.ErrStarted):
		return fmt.Errorf("job %s has already started; only a job that has not started can be cancelled", id)
	case errors.Is(err, backends.ErrFinished):
		return fmt.Errorf("job %s has already finished; only a job that has not started can be cancelled", id)
	case errors.Is(err, backends.ErrNotFound):
		return fmt.Errorf("no job %s (unknown, or its record expired)", id)
	}
	return err
}

// attended reports whether r is a terminal (a person who can be asked).
func attended(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// output prints the tooling's answers as tables or stable JSON.
type output struct {
	w    io.Writer
	json bool
}

func (o output) encode(v any) {
	enc := json.NewEncoder(o.w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (o output) table(header string, rows [][]string) {
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func (o output) stats(rep jobs.StatsReport) {
	if o.json {
		o.encode(rep)
		return
	}
	header := "QUEUE\tBACKEND\tWAITING\tIN FLIGHT\tDEAD\tOLDEST"
	var rows [][]string
	for _, q := range rep.Queues {
		if q.Error != "" {
			header += "\tERROR"
			break
		}
	}
	for _, q := range rep.Queues {
		if q.Error != "" {
			rows = append(rows, []string{q.Name, q.Backend, "-", "-", "-", "-", oneLine(q.Error)})
			continue
		}
		rows = append(rows, []string{q.Name, q.Backend, fmt.Sprint(q.Waiting), fmt.Sprint(q.InFlight), fmt.Sprint(q.Dead),
			age(q.OldestAgeSeconds)})
	}
	o.table(header, rows)
}

func age(s float64) string {
	if s <= 0 {
		return "-"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

func (o output) list(l jobs.JobList) {
	if o.json {
		o.encode(l)
		return
	}
	var rows [][]string
	for _, j := range l.Jobs {
		rows = append(rows, []string{j.ID, j.Queue, j.State, j.Route, j.Endpoint, fmt.Sprint(j.Attempts),
			j.CreatedAt.Format(time.RFC3339), oneLine(j.Error)})
	}
	o.table("ID\tQUEUE\tSTATE\tROUTE\tENDPOINT\tATTEMPTS\tCREATED\tERROR", rows)
}

func (o output) show(d *jobs.Detail) {
	if o.json {
		o.encode(d)
		return
	}
	tw := tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)
	line := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	line("id", d.ID)
	line("queue", d.Queue)
	line("state", d.State)
	line("route", d.Route)
	line("endpoint", d.Endpoint)
	line("request", strings.TrimSpace(d.Method+" "+d.Path+query(d.Query)))
	line("attempts", d.Attempts)
	line("created", d.CreatedAt.Format(time.RFC3339))
	if d.LastOutcome != "" {
		line("last outcome", strings.ReplaceAll(d.LastOutcome, "\n", " "))
	}
	if d.LastStatus != 0 {
		line("last status", d.LastStatus)
	}
	for _, a := range d.Outcomes {
		status := "-"
		if a.StatusCode != 0 {
			status = fmt.Sprint(a.StatusCode)
		}
		v := fmt.Sprintf("%s  %s  %s", a.At.Format("2006-01-02T15:04:05.000Z07:00"), status, strings.ReplaceAll(a.Outcome, "\n", " "))
		if a.Uncounted {
			v += " (not counted)"
		}
		line(fmt.Sprintf("attempt %d", a.Attempt), v)
	}
	if d.Result != nil {
		line("result", d.Result.Status)
	}
	tw.Flush()
	if d.Body != nil {
		fmt.Fprintf(o.w, "body:\n%s\n", *d.Body)
	}
}

func query(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func (o output) done(v any, text string) {
	if o.json {
		o.encode(v)
		return
	}
	fmt.Fprintln(o.w, text)
}
