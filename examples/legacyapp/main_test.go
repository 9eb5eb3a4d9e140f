package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(newHandler(10*time.Millisecond, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	do := func(method, path, body string, header map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, body := do("GET", "/hello", "", nil); code != 200 || !strings.Contains(body, "hello") {
		t.Errorf("GET /hello = %d %q", code, body)
	}
	code, body := do("POST", "/api/orders", `{"item":"book"}`, map[string]string{"Idempotency-Key": "job-1"})
	var order struct {
		ID    string         `json:"id"`
		Order map[string]any `json:"order"`
	}
	if err := json.Unmarshal([]byte(body), &order); err != nil || code != 201 || order.ID != "job-1" || order.Order["item"] != "book" {
		t.Errorf("POST /api/orders = %d %q (%v)", code, body, err)
	}
	if code, _ := do("POST", "/api/orders", `not json`, nil); code != 400 {
		t.Errorf("POST /api/orders with a bad body = %d, want 400", code)
	}
	if code, _ := do("GET", "/api/slow", "", nil); code != 200 {
		t.Errorf("GET /api/slow = %d", code)
	}
	var codes []int
	for range 4 {
		c, _ := do("GET", "/api/flaky", "", nil)
		codes = append(codes, c)
	}
	if want := []int{503, 200, 503, 200}; !slices.Equal(codes, want) {
		t.Errorf("/api/flaky codes %v, want %v", codes, want)
	}
}
