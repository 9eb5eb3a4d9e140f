// Command drain measures how fast one `openhqm worker` drains a backlog: it
// starts its own redis-server (and kfake for Kafka), an echo app and
// `openhqm serve`, submits -jobs async requests through serve, stops serve,
// then starts one worker and measures, until every job completed:
//
//   - jobs/s, from the worker's start to the last completion (startup included);
//   - the worker's CPU (utime+stime from /proc) per job, startup included;
//   - the app's and redis-server's CPU per job;
//   - Redis commands per job, from INFO commandstats after CONFIG RESETSTAT
//     (commands run inside scripts are counted there too), without the
//     measurement's own CONFIG and INFO.
//
// Then it reads every job's record back and checks that it completed with the
// app's answer (the echo of its own body). Each run uses fresh processes;
// the summary gives the median of the runs.
//
// With -attach it measures a backlog someone else queued (bench/run.sh):
// it only resets the Redis statistics, starts the worker and prints one line
// of "name value" pairs: completed_per_s, worker_cpu_us, app_cpu_us,
// redis_cpu_us, redis_commands (per job), jobs, seconds.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/openhqm/openhqm/backends"
	redisbackend "github.com/openhqm/openhqm/backends/redis"
)

type options struct {
	bin         string
	backend     string
	jobs        int
	runs        int
	concurrency int
	batch       int
	bodySize    int
	out         string
	keep        bool

	// -attach
	attach     bool
	config     string
	redisAddr  string
	metricsURL string
	appPID     int
	want       int
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the openhqm, upstream and kfake binaries")
	flag.StringVar(&o.backend, "backend", "redis", "queue backend: redis or kafka (results are always in Redis)")
	flag.IntVar(&o.jobs, "jobs", 20000, "jobs to queue and drain")
	flag.IntVar(&o.runs, "runs", 3, "runs; the summary is their median")
	flag.IntVar(&o.concurrency, "concurrency", 64, "worker.concurrency")
	flag.IntVar(&o.batch, "batch", 64, "worker.batch_size")
	flag.IntVar(&o.bodySize, "body", 256, "request body bytes per job")
	flag.StringVar(&o.out, "out", "", "directory for configurations and logs (default: a temporary one)")
	flag.BoolVar(&o.keep, "keep", false, "keep the output directory")
	flag.BoolVar(&o.attach, "attach", false, "measure a backlog queued by someone else (see -config, -redis, -metrics, -app-pid, -want)")
	flag.StringVar(&o.config, "config", "", "-attach: the worker's configuration")
	flag.StringVar(&o.redisAddr, "redis", "127.0.0.1:16390", "-attach: the Redis of the results (and of the queue)")
	flag.StringVar(&o.metricsURL, "metrics", "http://127.0.0.1:18020/metrics", "-attach: the worker's /metrics")
	flag.IntVar(&o.appPID, "app-pid", 0, "-attach: the app's process id, for its CPU per job")
	flag.IntVar(&o.want, "want", 0, "-attach: jobs to wait for")
	flag.Parse()
	var err error
	if o.attach {
		err = attach(o)
	} else {
		err = runAll(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "drain:", err)
		os.Exit(1)
	}
}

// figures of one drain.
type figures struct {
	Jobs       int            `json:"jobs"`
	Seconds    float64        `json:"seconds"`
	JobsPerSec float64        `json:"jobs_per_s"`
	WorkerCPU  float64        `json:"worker_cpu_us_per_job"`
	AppCPU     float64        `json:"app_cpu_us_per_job"`
	RedisCPU   float64        `json:"redis_cpu_us_per_job"`
	Commands   float64        `json:"redis_commands_per_job"`
	ByCommand  map[string]int `json:"redis_commands"`
}

func runAll(o options) error {
	if o.out == "" {
		dir, err := os.MkdirTemp("", "openhqm-drain-")
		if err != nil {
			return err
		}
		o.out = dir
		if !o.keep {
			defer os.RemoveAll(dir)
		}
	}
	var all []figures
	for i := range o.runs {
		f, err := runOnce(o, filepath.Join(o.out, fmt.Sprintf("run%d", i+1)))
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Printf("run %d: %s\n", i+1, f.line())
		all = append(all, f)
	}
	med := median(all)
	fmt.Printf("median of %d: %s\n", len(all), med.line())
	fmt.Printf("redis commands per job (run with the median commands/job): %s\n", breakdown(med))
	return nil
}

func (f figures) line() string {
	return fmt.Sprintf("%d jobs in %.3fs: %.0f jobs/s, worker CPU %.1f µs/job, app CPU %.1f µs/job, redis-server CPU %.1f µs/job, %.2f Redis commands/job",
		f.Jobs, f.Seconds, f.JobsPerSec, f.WorkerCPU, f.AppCPU, f.RedisCPU, f.Commands)
}

func breakdown(f figures) string {
	names := make([]string, 0, len(f.ByCommand))
	for n := range f.ByCommand {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return f.ByCommand[b] - f.ByCommand[a] })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.3f", n, float64(f.ByCommand[n])/float64(f.Jobs)))
	}
	return strings.Join(parts, ", ")
}

// median takes each figure's median on its own; ByCommand comes from the
// run whose command count is the median.
func median(fs []figures) figures {
	pick := func(get func(figures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	m := figures{Jobs: fs[0].Jobs}
	m.Seconds = pick(func(f figures) float64 { return f.Seconds })
	m.JobsPerSec = pick(func(f figures) float64 { return f.JobsPerSec })
	m.WorkerCPU = pick(func(f figures) float64 { return f.WorkerCPU })
	m.AppCPU = pick(func(f figures) float64 { return f.AppCPU })
	m.RedisCPU = pick(func(f figures) float64 { return f.RedisCPU })
	m.Commands = pick(func(f figures) float64 { return f.Commands })
	for _, f := range fs {
		if f.Commands == m.Commands {
			m.ByCommand = f.ByCommand
		}
	}
	return m
}

// procs starts processes and stops each by its own id.
type procs struct {
	dir string
	mu  sync.Mutex
	ps  []*exec.Cmd
}

func (p *procs) start(name string, args ...string) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(p.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.mu.Lock()
	p.ps = append(p.ps, cmd)
	p.mu.Unlock()
	go func() { cmd.Wait(); log.Close() }()
	return cmd, nil
}

// stop sends SIGTERM and waits up to 10s, then SIGKILL.
func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	for range 200 {
		if cmd.Process.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
}

func (p *procs) stopAll() {
	p.mu.Lock()
	ps := slices.Clone(p.ps)
	p.mu.Unlock()
	slices.Reverse(ps)
	for _, c := range ps {
		stop(c)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitPort(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func runOnce(o options, dir string) (figures, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return figures{}, err
	}
	ps := &procs{dir: dir}
	defer ps.stopAll()
	ports := make([]int, 5)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return figures{}, err
		}
		ports[i] = p
	}
	redisPort, appPort, servePort, workerPort, kafkaPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	redisAddr := fmt.Sprintf("127.0.0.1:%d", redisPort)
	if _, err := ps.start("redis", "redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(redisPort),
		"--save", "", "--appendonly", "no", "--dir", dir); err != nil {
		return figures{}, err
	}
	app, err := ps.start("app", filepath.Join(o.bin, "upstream"), "-echo", "-addr", fmt.Sprintf("127.0.0.1:%d", appPort))
	if err != nil {
		return figures{}, err
	}
	if o.backend == "kafka" {
		if _, err := ps.start("kfake", filepath.Join(o.bin, "kfake"), "-port", strconv.Itoa(kafkaPort), "-topics", "openhqm-drain"); err != nil {
			return figures{}, err
		}
		if err := waitPort(fmt.Sprintf("127.0.0.1:%d", kafkaPort), 10*time.Second); err != nil {
			return figures{}, err
		}
	}
	for _, a := range []string{redisAddr, fmt.Sprintf("127.0.0.1:%d", appPort)} {
		if err := waitPort(a, 10*time.Second); err != nil {
			return figures{}, err
		}
	}
	cfgPath := filepath.Join(dir, "openhqm.hcl")
	if err := os.WriteFile(cfgPath, []byte(configText(o, redisPort, appPort, servePort, workerPort, kafkaPort)), 0o644); err != nil {
		return figures{}, err
	}
	serve, err := ps.start("serve", filepath.Join(o.bin, "openhqm"), "serve", "-c", cfgPath)
	if err != nil {
		return figures{}, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", servePort)
	if err := waitReady(base+"/-/readyz", 30*time.Second); err != nil {
		return figures{}, err
	}
	jobs, err := submit(base+"/jobs", o.jobs, o.bodySize)
	if err != nil {
		return figures{}, err
	}
	stop(serve)

	rdb := goredis.NewClient(&goredis.Options{Addr: redisAddr})
	defer rdb.Close()
	f, err := measure(rdb, o.jobs, fmt.Sprintf("http://127.0.0.1:%d/metrics", workerPort), app.Process.Pid, func() (*exec.Cmd, error) {
		return ps.start("worker", filepath.Join(o.bin, "openhqm"), "worker", "-c", cfgPath, "bench-worker")
	})
	if err != nil {
		return f, err
	}
	return f, verify(redisAddr, jobs)
}

// measure resets the Redis statistics, starts the worker and waits until it
// completed want jobs, then reads the figures.
func measure(rdb *goredis.Client, want int, metricsURL string, appPID int, startWorker func() (*exec.Cmd, error)) (figures, error) {
	ctx := context.Background()
	redisPID, err := redisPID(ctx, rdb)
	if err != nil {
		return figures{}, err
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		return figures{}, err
	}
	app0, redis0 := ticks(appPID), ticks(redisPID)
	t0 := time.Now()
	worker, err := startWorker()
	if err != nil {
		return figures{}, err
	}
	defer stop(worker)
	pid := worker.Process.Pid
	var workerTicks int64
	done := 0
	deadline := t0.Add(10 * time.Minute)
	for done < want {
		if time.Now().After(deadline) {
			return figures{}, fmt.Errorf("only %d of %d jobs completed within 10 minutes", done, want)
		}
		// Each scrape also runs the queue's stats script: poll gently.
		time.Sleep(20 * time.Millisecond)
		n, err := completed(metricsURL)
		if err != nil {
			if worker.ProcessState != nil {
				return figures{}, fmt.Errorf("worker exited: %v", worker.ProcessState)
			}
			continue // not listening yet
		}
		done = n
		workerTicks = ticks(pid)
	}
	elapsed := time.Since(t0).Seconds()
	app1, redis1 := ticks(appPID), ticks(redisPID)
	stats, err := commandStats(ctx, rdb)
	if err != nil {
		return figures{}, err
	}
	f := figures{Jobs: done, Seconds: elapsed, JobsPerSec: float64(done) / elapsed, ByCommand: stats}
	perJob := func(t int64) float64 { return float64(t) / hz * 1e6 / float64(done) }
	f.WorkerCPU = perJob(workerTicks)
	if appPID > 0 {
		f.AppCPU = perJob(app1 - app0)
	}
	f.RedisCPU = perJob(redis1 - redis0)
	total := 0
	for _, n := range stats {
		total += n
	}
	f.Commands = float64(total) / float64(done)
	return f, nil
}

// hz is CLK_TCK, 100 on Linux.
const hz = 100

// ticks is utime+stime of pid in clock ticks; 0 when unknown.
func ticks(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func redisPID(ctx context.Context, rdb *goredis.Client) (int, error) {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// commandStats reads the calls per command since CONFIG RESETSTAT, without
// the measurement's own CONFIG and INFO.
func commandStats(ctx context.Context, rdb *goredis.Client) (map[string]int, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd || name == "info" || strings.HasPrefix(name, "config") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, err := strconv.Atoi(calls)
		if err != nil {
			return nil, fmt.Errorf("commandstats line %q: %w", line, err)
		}
		out[name] = n
	}
	return out, nil
}

// completed sums openhqm_worker_jobs_total{outcome="completed"}.
func completed(url string) (int, error) {
	code, body, err := fasthttp.Get(nil, url)
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("%s answered %d", url, code)
	}
	n := 0.0
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "openhqm_worker_jobs_total{") && strings.Contains(l, `outcome="completed"`) {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			n += v
		}
	}
	return int(n), nil
}

func waitReady(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if code, _, err := fasthttp.Get(nil, url); err == nil && code == 200 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %v", url, within)
}

type job struct{ id, body string }

// submit posts n jobs with 32 concurrent clients and returns their ids.
func submit(url string, n, size int) ([]job, error) {
	jobs := make([]job, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	client := &fasthttp.Client{MaxConnsPerHost: 64}
	for range 32 {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				head := fmt.Sprintf(`{"n":%d,"pad":"`, i)
				body := head + strings.Repeat("x", max(size-len(head)-2, 0)) + `"}`
				req.Reset()
				req.SetRequestURI(url)
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.SetBodyString(body)
				if err := client.DoTimeout(req, resp, 10*time.Second); err != nil {
					errs <- err
					return
				}
				if resp.StatusCode() != 202 {
					errs <- fmt.Errorf("submit %d answered %d: %s", i, resp.StatusCode(), resp.Body())
					return
				}
				var a struct{ ID string }
				if err := json.Unmarshal(resp.Body(), &a); err != nil || a.ID == "" {
					errs <- fmt.Errorf("submit %d: no id in %q", i, resp.Body())
					return
				}
				jobs[i] = job{id: a.ID, body: body}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return jobs, nil
}

// verify reads every job's record: completed, 200, the echo of its body.
func verify(redisAddr string, jobs []job) error {
	ctx := context.Background()
	s, err := redisbackend.NewResults(ctx, redisbackend.ResultsOptions{URL: "redis://" + redisAddr, Prefix: "openhqm:result:"})
	if err != nil {
		return err
	}
	defer s.Close()
	for _, j := range jobs {
		r, err := s.Get(ctx, j.id)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.id, err)
		}
		if r.Status != backends.StatusCompleted || r.StatusCode != 200 || string(r.Body) != j.body {
			return fmt.Errorf("job %s: %s %d %q, want completed 200 with the echo of %q", j.id, r.Status, r.StatusCode, r.Body, j.body)
		}
	}
	return nil
}

// attach measures a backlog queued by someone else and prints its figures as JSON.
func attach(o options) error {
	if o.config == "" || o.want <= 0 {
		return errors.New("-attach needs -config and -want")
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: o.redisAddr})
	defer rdb.Close()
	dir, err := os.MkdirTemp("", "openhqm-drain-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ps := &procs{dir: dir}
	defer ps.stopAll()
	f, err := measure(rdb, o.want, o.metricsURL, o.appPID, func() (*exec.Cmd, error) {
		return ps.start("worker", filepath.Join(o.bin, "openhqm"), "worker", "-c", o.config, "bench-worker")
	})
	if err != nil {
		if b, _ := os.ReadFile(filepath.Join(dir, "worker.log")); len(b) > 0 {
			os.Stderr.Write(b)
		}
		return err
	}
	fmt.Printf("completed_per_s %.0f worker_cpu_us %.1f app_cpu_us %.1f redis_cpu_us %.1f redis_commands %.2f jobs %d seconds %.2f\n",
		f.JobsPerSec, f.WorkerCPU, f.AppCPU, f.RedisCPU, f.Commands, f.Jobs, f.Seconds)
	fmt.Fprintf(os.Stderr, "redis commands per job: %s\n", breakdown(f))
	return nil
}

func configText(o options, redisPort, appPort, servePort, workerPort, kafkaPort int) string {
	queue := fmt.Sprintf(`  backend = "redis"
  redis {
    url    = "redis://127.0.0.1:%d"
    stream = "openhqm-drain"
    group  = "openhqm-drain"
  }`, redisPort)
	if o.backend == "kafka" {
		queue = fmt.Sprintf(`  backend = "kafka"
  kafka {
    brokers = ["127.0.0.1:%d"]
    topic   = "openhqm-drain"
    group   = "openhqm-drain"
  }`, kafkaPort)
	}
	return fmt.Sprintf(`# written by bench/drain
server {
  listen = "127.0.0.1:%d"
}

endpoint "app" {
  url     = "http://127.0.0.1:%d"
  timeout = "10s"
}

queue "jobs" {
%s
  max_depth = 10000000
  lease     = "30s"
}

results {
  backend = "redis"
  redis {
    url = "redis://127.0.0.1:%d"
  }
  ttl = "10m"
}

route "jobs" {
  match {
    path_prefix = "/jobs"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}

worker {
  embedded    = false
  concurrency = %d
  batch_size  = %d
  listen      = "127.0.0.1:%d"
}

telemetry {
  log_level = "warn"
}
`, servePort, appPort, queue, redisPort, o.concurrency, o.batch, workerPort)
}
