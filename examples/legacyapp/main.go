// Command legacyapp is a small HTTP application of the kind openhqm sits in
// front of: it knows nothing about queues, answers slowly on one path and
// fails every other call on another. `make run` starts it beside openhqm with
// examples/quickstart.hcl.
//
//	GET  /hello        plain-text greeting
//	POST /api/orders   echoes the JSON order with an id ("Idempotency-Key" is reused as the id)
//	GET  /api/orders/… the order's id and status
//	GET  /api/slow     answers after -slow (default 2s)
//	ANY  /api/flaky    503 on every other call, 200 otherwise
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen `address`")
	slow := flag.Duration("slow", 2*time.Second, "delay of /api/slow")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &http.Server{
		Addr:              *addr,
		Handler:           newHandler(*slow, log),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("legacy app listening", "addr", *addr)
	select {
	case err := <-errc:
		log.Error("listen", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
	}
}

func newHandler(slow time.Duration, log *slog.Logger) http.Handler {
	var flaky atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from the legacy app")
	})
	mux.HandleFunc("POST /api/orders", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var order any
		if len(body) > 0 {
			if err := json.Unmarshal(body, &order); err != nil {
				http.Error(w, "body is not JSON: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		id := r.Header.Get("Idempotency-Key")
		if id == "" {
			id = newID()
		}
		log.Info("order", "id", id, "request_id", r.Header.Get("X-Request-ID"))
		writeJSON(w, http.StatusCreated, map[string]any{"id": id, "status": "created", "order": order})
	})
	mux.HandleFunc("GET /api/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "status": "created"})
	})
	mux.HandleFunc("GET /api/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(slow):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"report": "done", "took": slow.String()})
	})
	mux.HandleFunc("/api/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1)%2 == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "method": r.Method})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			fmt.Fprintln(w, "legacy app: try /hello, /api/orders, /api/slow, /api/flaky")
			return
		}
		http.NotFound(w, r)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return "ord-" + strings.ToLower(hex.EncodeToString(b[:]))
}
