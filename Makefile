# openhqm — build, run, test and benchmark.
GO       ?= go
BIN      ?= bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# An execution count, not a duration: a duration races the fuzzing coordinator's own
# deadline on a busy machine and fails with "context deadline exceeded" (go.dev/issue/75804).
FUZZTIME ?= 50000x

.PHONY: all build run test test-go test-deploy fuzz bench lint fmt generate clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/openhqm ./cmd/openhqm
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/legacyapp ./examples/legacyapp

# run: the example legacy app on 127.0.0.1:8080 and openhqm in front of it on :8000,
# with the quickstart configuration (memory queue, embedded worker: no Redis needed).
run: build
	@scripts/run.sh $(BIN)

test: lint test-go test-deploy fuzz

test-go:
	$(GO) test -count=1 -timeout 10m ./...

test-deploy:
	cd deploy && $(GO) test -count=1 -timeout 5m ./...

# A short fuzzing pass over the parsers and the matcher; their seeds also run in test-go.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./config
	$(GO) test -run '^$$' -fuzz '^FuzzCompileJQ$$' -fuzztime $(FUZZTIME) ./config
	$(GO) test -run '^$$' -fuzz '^FuzzMatch$$' -fuzztime $(FUZZTIME) ./router
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeJob$$' -fuzztime $(FUZZTIME) ./backends/wire
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecordValue$$' -fuzztime $(FUZZTIME) ./backends/redis
	$(GO) test -run '^$$' -fuzz '^FuzzFramer$$' -fuzztime $(FUZZTIME) ./internal/connguard
	$(GO) test -run '^$$' -fuzz '^FuzzAmbiguousPath$$' -fuzztime $(FUZZTIME) ./router
	$(GO) test -run '^$$' -fuzz '^FuzzFramerAgrees$$' -fuzztime $(FUZZTIME) ./internal/connguard
	$(GO) test -run '^$$' -fuzz '^FuzzIdempotencyKey$$' -fuzztime $(FUZZTIME) ./router

bench: build
	@bench/run.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	cd deploy && $(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
	$(GO) run ./cmd/openhqm fmt examples deploy/base

generate:
	$(GO) generate ./...

clean:
	rm -rf $(BIN)
