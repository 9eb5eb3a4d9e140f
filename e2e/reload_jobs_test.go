package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func jobsConfig(listen, appURL, timeout string, withSecondQueue bool) string {
	second := ""
	if withSecondQueue {
		second = `
queue "second" {
  backend = "memory"
  lease   = "30s"
}

route "second" {
  match {
    path_prefix = "/second"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "second"
}
`
	}
	return fmt.Sprintf(`
server {
  listen      = %q
  admin_token = "e2e-admin-token"
}

endpoint "app" {
  url     = %q
  timeout = %q
}

queue "first" {
  backend = "memory"
  lease   = "30s"
}

route "first" {
  match {
    path_prefix = "/first"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "first"
}
%s
worker {
  embedded = true
  drain    = "10s"
}

telemetry {
  log_level = "warn"
}
`, listen, appURL, timeout, second)
}

// TestReloadWhileJobsRun: jobs accepted under one generation are being
// replayed when a reload changes their endpoint's timeout and removes the
// queue of one of them. Both complete with the app's answer: the changed
// route's job on the new settings, the removed queue's consumer by draining.
func TestReloadWhileJobsRun(t *testing.T) {
	a := startApp(t, 1500*time.Millisecond)
	listen := freeAddr(t)
	base := "http://" + listen
	cm := newConfigMap(t, jobsConfig(listen, a.URL, "20s", true))
	serve := start(t, "serve", nil, "serve", "-c", cm.dir)
	waitOK(t, serve, base+"/-/readyz")

	first, err := submit(base, "/first/x", `{"job":"first"}`)
	if err != nil || first.code != http.StatusAccepted {
		t.Fatalf("submit first: %+v %v", first, err)
	}
	second, err := submit(base, "/second/y", `{"job":"second"}`)
	if err != nil || second.code != http.StatusAccepted {
		t.Fatalf("submit second: %+v %v", second, err)
	}
	// Both are with the app now.
	deadline := time.Now().Add(5 * time.Second)
	for a.saw(first.id) == 0 || a.saw(second.id) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the app did not receive both jobs")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cm.update(t, jobsConfig(listen, a.URL, "10s", false))
	resp, err := client.Post(base+"/-/reload", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /-/reload: %v %v", resp, err)
	}
	resp.Body.Close()
	if cfg := get(t, base+"/-/routes"); strings.Contains(cfg, `"second"`) {
		t.Fatalf("route second still served after the reload: %s", cfg)
	}

	waitCompleted(t, base, []string{first.id, second.id}, 15*time.Second)
	for _, s := range []submitted{first, second} {
		code, _, body, err := response(base, s.id)
		want := answer(map[string]string{first.id: "/first/x", second.id: "/second/y"}[s.id], s.body)
		if err != nil || code != 200 || body != want {
			t.Fatalf("job %s: %d %q %v, want %q", s.id, code, body, err, want)
		}
		if n := a.saw(s.id); n != 1 {
			t.Errorf("the app saw job %s %d times, want once", s.id, n)
		}
	}
	// A submit to the removed route finds no route any more.
	if s, _ := submit(base, "/second/z", `{}`); s.code != http.StatusNotFound {
		t.Errorf("submit to the removed route: %d, want 404", s.code)
	}
	if code := serve.stop(t, 20*time.Second); code != 0 {
		t.Errorf("serve exited %d, want 0", code)
	}
}
