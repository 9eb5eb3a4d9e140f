package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// configMap is a directory laid out the way kubelet mounts a ConfigMap:
// openhqm.hcl -> ..data/openhqm.hcl, ..data -> ..<timestamp>/.
type configMap struct {
	dir  string
	cur  string // the current timestamped directory
	seq  int
	name string
}

func newConfigMap(t *testing.T, text string) *configMap {
	t.Helper()
	m := &configMap{dir: t.TempDir(), name: "openhqm.hcl"}
	m.update(t, text)
	if err := os.Symlink(filepath.Join("..data", m.name), filepath.Join(m.dir, m.name)); err != nil {
		t.Fatal(err)
	}
	return m
}

// update performs kubelet's atomic update: write a new timestamped
// directory, point ..data_tmp at it, rename ..data_tmp over ..data, remove
// the old directory. It returns the time of the rename.
func (m *configMap) update(t *testing.T, text string) time.Time {
	t.Helper()
	m.seq++
	ts := fmt.Sprintf("..2026_11_26_10_00_%02d.%09d", m.seq%60, m.seq)
	if err := os.Mkdir(filepath.Join(m.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.dir, ts, m.name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if m.cur != "" {
		if err := os.RemoveAll(filepath.Join(m.dir, m.cur)); err != nil {
			t.Fatal(err)
		}
	}
	m.cur = ts
	return at
}

// namedApp answers every request with its name and the X-Gen header it got.
func namedApp(t *testing.T, name string) string {
	t.Helper()
	a := startApp(t, 0)
	a.name = name
	return a.URL
}

// swapConfig routes /a and /b to two endpoints; version 1 sends /a to app
// "one" and /b to "two", version 2 the other way round, with other
// timeouts. Each endpoint stamps the version into X-Gen, so every answer
// tells which generation served it.
func swapConfig(listen, one, two string, version int) string {
	a, b := "one", "two"
	timeout := "5s"
	if version == 2 {
		a, b = "two", "one"
		timeout = "4s"
	}
	return fmt.Sprintf(`
server {
  listen      = %[1]q
  admin_token = "e2e-admin-token"
}

endpoint "one" {
  url     = %[2]q
  timeout = %[5]q
  headers = { "X-Gen" = "v%[6]d" }
}

endpoint "two" {
  url     = %[3]q
  timeout = %[5]q
  headers = { "X-Gen" = "v%[6]d" }
}

route "a" {
  match {
    path_prefix = "/a"
  }
  endpoint = %[4]q
}

route "b" {
  match {
    path_prefix = "/b"
  }
  endpoint = %[7]q
  timeout  = "3s"
}

telemetry {
  log_level = "warn"
}
`, listen, one, two, a, timeout, version, b)
}

// served asks path and returns which app answered under which version.
func served(base, path string) (app, gen string, err error) {
	resp, err := client.Get(base + path)
	if err != nil {
		return "", "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", "", fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return resp.Header.Get("X-App-Name"), resp.Header.Get("X-Gen-Seen"), nil
}

// expected is which app serves path under version gen.
func expected(path, gen string) string {
	if (path == "/a") == (gen == "v1") {
		return "one"
	}
	return "two"
}

// TestKubeletConfigMapSwap reproduces kubelet's update sequence several
// times, one of them to an invalid configuration and back, and measures
// how long a valid change takes to serve.
func TestKubeletConfigMapSwap(t *testing.T) {
	one, two := namedApp(t, "one"), namedApp(t, "two")
	listen := freeAddr(t)
	base := "http://" + listen
	cm := newConfigMap(t, swapConfig(listen, one, two, 1))
	serve := start(t, "serve", nil, "serve", "-c", cm.dir)
	waitOK(t, serve, base+"/-/readyz")

	var lags []time.Duration
	version := 1
	for i := range 12 {
		if i == 5 {
			// An invalid configuration must never go live.
			cm.update(t, swapConfig(listen, one, two, 3-version)+"\nroute \"broken\" {\n  endpoint = \"nowhere\"\n}\n")
			time.Sleep(1500 * time.Millisecond)
			for _, path := range []string{"/a", "/b"} {
				app, gen, err := served(base, path)
				if err != nil || gen != fmt.Sprintf("v%d", version) || app != expected(path, gen) {
					t.Fatalf("after an invalid update %s was served by %s under %s (%v); want the running v%d", path, app, gen, err, version)
				}
			}
			cfg := get(t, base+"/-/config")
			if !strings.Contains(cfg, "last_reload_error") || !strings.Contains(cfg, "nowhere") {
				t.Fatalf("/-/config does not show the rejected reload: %s", cfg)
			}
		}
		version = 3 - version
		want := fmt.Sprintf("v%d", version)
		at := cm.update(t, swapConfig(listen, one, two, version))
		for {
			app, gen, err := served(base, "/a")
			if err == nil && gen == want {
				if app != expected("/a", gen) {
					t.Fatalf("/a served by %s under %s", app, gen)
				}
				lags = append(lags, time.Since(at))
				break
			}
			if time.Since(at) > 2*time.Second {
				t.Fatalf("update %d not live within 2s (serving %s, %v)", i, gen, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	slices.Sort(lags)
	t.Logf("rename of ..data to the first request served by the new configuration: median %v, min %v, max %v over %d updates",
		lags[len(lags)/2].Round(time.Millisecond), lags[0].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), len(lags))
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metric reads one unlabelled sample from a Prometheus text page.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(get(t, url)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%s not found at %s", name, url)
	return 0
}

// TestReloadUnderLoad keeps requests flowing over keep-alive connections to
// two routes while the configuration is swapped 100 times between two
// versions that move each path to the other endpoint and change timeouts.
// No request may fail or reach the wrong app, and goroutines and open files
// must come back to where they started.
func TestReloadUnderLoad(t *testing.T) {
	one, two := namedApp(t, "one"), namedApp(t, "two")
	listen := freeAddr(t)
	base := "http://" + listen
	cm := newConfigMap(t, swapConfig(listen, one, two, 1))
	serve := start(t, "serve", nil, "serve", "-c", cm.dir)
	waitOK(t, serve, base+"/-/readyz")

	load := func(d time.Duration, during func()) (n int64, failures []string, p99 time.Duration) {
		var (
			stop  atomic.Bool
			count atomic.Int64
			mu    sync.Mutex
			lats  []time.Duration
		)
		var wg sync.WaitGroup
		for w := range 8 {
			path := []string{"/a", "/b"}[w%2]
			wg.Go(func() {
				var mine []time.Duration
				for !stop.Load() {
					t0 := time.Now()
					app, gen, err := served(base, path)
					mine = append(mine, time.Since(t0))
					count.Add(1)
					if err == nil && app != expected(path, gen) {
						err = fmt.Errorf("%s under %s reached app %s", path, gen, app)
					}
					if err != nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
					}
				}
				mu.Lock()
				lats = append(lats, mine...)
				mu.Unlock()
			})
		}
		if during != nil {
			during()
		} else {
			time.Sleep(d)
		}
		stop.Store(true)
		wg.Wait()
		slices.Sort(lats)
		return count.Load(), failures, lats[len(lats)*99/100]
	}

	load(500*time.Millisecond, nil) // warm up connections on both sides
	// Count with no client connection open: each one holds a goroutine and
	// a file in serve, and how many the client keeps is its own business.
	client.CloseIdleConnections()
	time.Sleep(300 * time.Millisecond)
	g0 := metric(t, base+"/metrics", "go_goroutines")
	f0 := metric(t, base+"/metrics", "process_open_fds")

	n, failures, quiet := load(3*time.Second, nil)
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed without reloads: %v", len(failures), n, failures[:min(5, len(failures))])
	}
	version := 1
	n, failures, busy := load(0, func() {
		for range 100 {
			version = 3 - version
			cm.update(t, swapConfig(listen, one, two, version))
			resp, err := client.Post(base+"/-/reload", "", nil)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("POST /-/reload: %d", resp.StatusCode)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed or were misrouted during 100 reloads: %v", len(failures), n, failures[:min(5, len(failures))])
	}
	gen := metric(t, base+"/metrics", "openhqm_config_generation")
	if gen < 101 {
		t.Fatalf("openhqm_config_generation = %v after 100 reloads, want ≥ 101", gen)
	}
	t.Logf("%d requests during 100 reloads, none failed or misrouted; p99 %v with reloads, %v without", n, busy.Round(time.Microsecond), quiet.Round(time.Microsecond))

	// Let the watcher see the last swap, and retired clients close.
	time.Sleep(1500 * time.Millisecond)
	var g1, f1 float64
	client.CloseIdleConnections()
	// fasthttp keeps an idle worker goroutine up to 10s and stops it at its
	// next cleaning pass, so give the count up to 30s to come back down.
	for range 300 {
		g1 = metric(t, base+"/metrics", "go_goroutines")
		f1 = metric(t, base+"/metrics", "process_open_fds")
		if g1 <= g0 && f1 <= f0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines %v → %v, open files %v → %v", g0, g1, f0, f1)
	if g1 > g0 || f1 > f0 {
		t.Errorf("after the reloads goroutines %v (start %v), open files %v (start %v): something leaked", g1, g0, f1, f0)
	}
}
