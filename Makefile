# flexgate — make run serves the built-in quick-start; make test runs every test.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/flexgate
IMAGE    ?= ghcr.io/flexgate/flexgate

.PHONY: soak run build lint test test-go test-deploy test-loadtest test-race vet fmt-check bench bench-compare bench-scaleout bench-websocket image clean

## run: build and serve (the built-in quick-start without CONFIG; `make run CONFIG=path` for yours,
## ARGS for more flags: ARGS="--clients clients.yaml")
run: build
	./$(BIN) run $(if $(CONFIG),--config $(CONFIG)) --listen $(or $(LISTEN),:8080) --admin-addr $(or $(ADMIN),:9901) $(ARGS)

## build: a static binary in bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/flexgate

## test: lint, formatting, vet, every Go test (also under the race detector), the deployment checks and the k6 scripts' syntax
test: lint fmt-check vet test-go test-race test-deploy test-loadtest

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

## lint: staticcheck, go.mod and go.sum tidy, and no absolute path of a machine (a checkout
## location, a home directory) in the repository's files
lint:
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff
	$(GO) test -count=1 -run '^TestNoMachinePaths$$' .

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -count=1 -timeout 10m ./...

## test-deploy: the Helm chart, image, workflow and dashboard checks (needs yamllint and shellcheck; .ci/run installs them)
test-deploy:
	bash deploy/test.sh

test-loadtest:
	./loadtest/check-scripts.sh

# Allocation tests skip themselves here: race instrumentation allocates.
test-race:
	$(GO) test -race -count=1 -timeout 15m ./...

## soak: mixed clients against a flapping, misbehaving upstream while the config reloads (SOAK=10m);
## fails on an answer that reached the wrong client, on heap growth or on goroutine growth
soak:
	FLEXGATE_SOAK=$(or $(SOAK),10m) $(GO) test -run '^TestSoak$$' -count=1 -timeout 60m -v ./proxy

## bench: Go micro-benchmarks (router, chain, policies, proxy round trip), benchstat-friendly
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(or $(COUNT),1) ./...

## bench-compare: flexgate side by side with nginx, HAProxy, Caddy and Traefik (BENCH_TIME to change the length, BENCH_PHASES to run part of it)
bench-compare:
	$(GO) run ./bench/compare

## bench-scaleout: three gateways and one Redis: a clusterizable limit's accuracy per window, its
## throughput against per-replica limits, Redis calls per request, p99 (BENCH_TIME to change the length, ARGS for flags)
bench-scaleout:
	$(GO) run ./bench/scaleout $(ARGS)

## bench-websocket: memory of 10,000 idle WebSocket connections through flexgate (WS_CONNS to change)
bench-websocket:
	$(GO) run ./bench/wsidle -n $(or $(WS_CONNS),10000)

## image: the container image (needs a Docker engine)
image:
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) \
		--build-arg SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) \
		-t $(IMAGE):$(VERSION) .

clean:
	rm -rf bin
