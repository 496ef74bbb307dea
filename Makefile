# clustermgr — build, test, run locally, benchmark.
GO       ?= go
BIN      ?= bin/clustermgr
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Benchmarks: how many runs of each (medians are reported over them).
BENCH_COUNT ?= 5

.PHONY: build test test-short test-faults dev bench bench-scale lint clean openapi screenshots

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/clustermgr

# The whole suite: unit, in-process Raft groups, API, process-level tests.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# The dashboard's screenshots (desktop and phone) from its end-to-end test.
screenshots:
	mkdir -p $(CURDIR)/docs/screenshots
	DASHBOARD_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run TestDashboard_SwitchoverThroughAFollower ./pkg/ha

# Rewrite pkg/openapi/openapi.json after a change of the routes or of the
# wire types (a test fails while it is out of date).
openapi:
	$(GO) test -count=1 -run TestDocumentIsCurrent ./pkg/openapi -update

# Unit tests only (skips the tests that start server processes).
test-short:
	$(GO) test -short -count=1 ./...

# The fault suite: real manager, agent and PostgreSQL processes; every
# fault in asynchronous and synchronous mode on a fresh cluster, under a
# client writing through target_session_attrs=read-write. The results
# table goes to faults.md. Select with FAULTS='on/primary_SIGKILL'.
FAULTS ?= .
test-faults:
	FAULTS_OUT=$(CURDIR)/faults.md $(GO) test -tags faults -count=1 -v -timeout 80m -run 'TestFaults/$(FAULTS)' ./internal/faults

# A local manager group of three replicas on loopback (Ctrl-C stops it).
# The binary runs in make's place of go run, which reports an interrupt as
# a failure: Ctrl-C ends make dev with status 0.
dev: build
	$(BIN) dev

# Go benchmarks; results in bench.out (see README "Benchmarks").
bench:
	$(GO) test -run '^$$' -bench 'Apply' -benchtime 3000x -count $(BENCH_COUNT) ./pkg/meta | tee bench.out
	$(GO) test -run '^$$' -bench 'GetCluster' -benchtime 20000x -count $(BENCH_COUNT) ./pkg/service | tee -a bench.out
	$(GO) test -run '^$$' -bench 'Metrics' -benchtime 30x -count $(BENCH_COUNT) ./pkg/service | tee -a bench.out
	$(GO) test -run '^$$' -bench 'DashboardOverview' -benchtime 5x -count $(BENCH_COUNT) ./pkg/web | tee -a bench.out
	$(GO) test -run '^$$' -bench 'Reelection' -benchtime 10x -count $(BENCH_COUNT) ./cmd/clustermgr | tee -a bench.out
	$(GO) test -run '^$$' -bench 'WriteGap|ProvisionShard|BackupThroughput' -benchtime 5x -count $(BENCH_COUNT) -timeout 30m ./pkg/ha | tee -a bench.out
	$(GO) test -tags faults -run '^$$' -bench 'ClientWriteGap' -benchtime $(BENCH_COUNT)x -count 1 -timeout 30m ./internal/faults | tee -a bench.out
	$(GO) test -run '^$$' -bench 'HAProxyWriteGap' -benchtime $(BENCH_COUNT)x -count 1 -timeout 30m ./internal/faults | tee -a bench.out

# One manager group over a simulated fleet (README "Fleet scale"): the
# figures for each size in NODES (3 nodes per shard) and for a one-shard
# group, as a table; SCALE_FLAGS passes more (-duration, -trials, -keep).
NODES ?= 1000,10000
SCALE_FLAGS ?=
bench-scale: build
	$(GO) build -o bin/benchscale ./internal/fleetsim/benchscale
	bin/benchscale -bin $(BIN) -nodes $(NODES) $(SCALE_FLAGS) | tee bench-scale.out

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@latest"; fi

clean:
	rm -rf bin bench.out bench-scale.out faults.md
