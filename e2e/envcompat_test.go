package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openhqm/openhqm/internal/testredis"
)

// originalEnv is exactly the environment of the original OpenHQM's sidecar
// Deployment, with the addresses pointed at local ones.
func originalEnv(appURL, redisURL, listen string) []string {
	host, port, _ := net.SplitHostPort(listen)
	return []string{
		"OPENHQM_PROXY__ENABLED=true",
		"OPENHQM_PROXY__DEFAULT_ENDPOINT=" + appURL,
		"OPENHQM_QUEUE__TYPE=redis",
		"OPENHQM_QUEUE__REDIS_URL=" + redisURL,
		"OPENHQM_CACHE__TYPE=redis",
		"OPENHQM_CACHE__REDIS_URL=" + redisURL,
		"OPENHQM_MONITORING__LOG_LEVEL=INFO",
		"OPENHQM_MONITORING__METRICS_ENABLED=true",
		"OPENHQM_SERVER__HOST=" + host,
		"OPENHQM_SERVER__PORT=" + port,
	}
}

// workerEnv adds what the original's worker Deployment sets.
func workerEnv(env []string, podName string) []string {
	return append(env,
		"OPENHQM_WORKER__BATCH_SIZE=10",
		"OPENHQM_WORKER__TIMEOUT_SECONDS=300",
		"OPENHQM_WORKER__MAX_RETRIES=3",
		"POD_NAME="+podName,
	)
}

// TestOriginalEnvironment runs serve and worker configured only by the
// original's OPENHQM_* variables and drives one request from
// /api/v1/submit to a completed /api/v1/response/{id}. Then it checks both
// processes' metrics with promtool.
func TestOriginalEnvironment(t *testing.T) {
	rs := testredis.Start(t)
	a := startApp(t, 0)
	serveAddr, workerAddr := freeAddr(t), freeAddr(t)

	serve := start(t, "serve", originalEnv(a.URL, rs.URL(), serveAddr), "serve")
	// The original's worker manifest passes the pod name as an argument.
	worker := start(t, "worker", workerEnv(originalEnv(a.URL, rs.URL(), workerAddr), "openhqm-worker-0"), "worker", "openhqm-worker-0")
	base := "http://" + serveAddr
	waitOK(t, serve, base+"/health")
	waitOK(t, worker, "http://"+workerAddr+"/health")

	// The sync proxy to the default endpoint.
	resp, err := client.Post(base+"/orders/7", "application/json", strings.NewReader(`{"sync":true}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != answer("/orders/7", `{"sync":true}`) {
		t.Fatalf("sync proxy: %d %s", resp.StatusCode, b)
	}

	resp, err = client.Post(base+"/api/v1/submit", "application/json", strings.NewReader(`{"payload":{"order":42,"note":"héllo"},"metadata":{"priority":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	var sub struct {
		CorrelationID string `json:"correlation_id"`
		Status        string `json:"status"`
		SubmittedAt   string `json:"submitted_at"`
	}
	json.NewDecoder(resp.Body).Decode(&sub)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || sub.CorrelationID == "" || sub.Status != "PENDING" || sub.SubmittedAt == "" {
		t.Fatalf("submit: %d %+v", resp.StatusCode, sub)
	}

	var res struct {
		CorrelationID    string            `json:"correlation_id"`
		Status           string            `json:"status"`
		Result           json.RawMessage   `json:"result"`
		StatusCode       int               `json:"status_code"`
		Headers          map[string]string `json:"headers"`
		ProcessingTimeMS *float64          `json:"processing_time_ms"`
		CompletedAt      string            `json:"completed_at"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(base + "/api/v1/response/" + sub.CorrelationID)
		if err != nil {
			t.Fatal(err)
		}
		code := resp.StatusCode
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if code == http.StatusOK {
			if err := json.Unmarshal(body, &res); err != nil {
				t.Fatalf("response body %s: %v", body, err)
			}
			break
		}
		if code != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("GET /api/v1/response: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var result struct {
		Path string `json:"path"`
		Echo string `json:"echo"`
	}
	if err := json.Unmarshal(res.Result, &result); err != nil {
		t.Fatalf("result %s is not the app's JSON: %v", res.Result, err)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(result.Echo), &payload); err != nil || payload["order"] != float64(42) || payload["note"] != "héllo" {
		t.Fatalf("the app received %q, want the submitted payload", result.Echo)
	}
	if res.CorrelationID != sub.CorrelationID || res.Status != "COMPLETED" || res.StatusCode != 200 || res.ProcessingTimeMS == nil || res.CompletedAt == "" {
		t.Fatalf("response: %+v", res)
	}

	resp, err = client.Get(base + "/api/v1/status/" + sub.CorrelationID)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 200 || st.Status != "COMPLETED" {
		t.Fatalf("status: %d %+v", resp.StatusCode, st)
	}

	t.Run("promtool", func(t *testing.T) {
		checkMetrics(t, base+"/metrics", "openhqm_http_requests_total", "openhqm_config_generation")
		checkMetrics(t, "http://"+workerAddr+"/metrics", "openhqm_worker_processing_duration_seconds_count", "openhqm_worker_active", "openhqm_queue_depth")
	})
	for _, p := range []*proc{worker, serve} {
		if code := p.stop(t, 15*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0", p.name, code)
		}
	}
}

// checkMetrics runs `promtool check metrics` on what url serves and fails on
// any complaint.
func checkMetrics(t *testing.T, url string, want ...string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal(`promtool not found on PATH: install it with "apt-get install -y prometheus"`)
	}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	for _, name := range want {
		if !strings.Contains(string(body), name) {
			t.Fatalf("%s has no %s series", url, name)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(string(body))
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics on %s: %v\n%s", url, err, out)
	}
}
