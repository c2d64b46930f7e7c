# pushfabric — everything CI runs is `make test`.

GO          ?= go
BIN         := $(CURDIR)/bin
# The Go toolchain everything here builds and tests with: go.mod's
# toolchain line (deployments/check keeps the two in step). Go fetches it
# once through the module proxy; go.mod's go line (1.26.8) stays the
# oldest Go the code builds with.
export GOTOOLCHAIN := go1.27.3
# Go tools analyse code with the standard library of the Go that built
# them: they are kept apart by toolchain.
TOOLS       := $(BIN)/tools-$(GOTOOLCHAIN)
STATICCHECK := $(TOOLS)/staticcheck
STATICCHECK_VERSION := v0.8.2
# The stock NATS CLI, which the end-to-end tests drive as operators would.
NATS_CLI    := $(BIN)/nats
NATS_CLI_VERSION := v0.5.0
# Property tests run this many cases each.
RAPID_CHECKS ?= 10000
# Each fuzz target runs this many inputs in `make test` (the whole fuzz
# step under 4 minutes on 2 cores); a target written pkg:Target@N runs N
# instead, for the targets whose every input is a round trip (a node over
# NATS, 10,000) or a whole command line (2,000; about 500 inputs a
# second). A campaign sets FUZZTIME, a duration or a count, for every
# target alike:
# `make fuzz FUZZTIME=10m` runs each for ten minutes, one after another,
# and names at the end those that failed. A count in `make test`, the same
# work on any machine; a duration works too with the Go this builds with
# (Go 1.26 could end one with a spurious "context deadline exceeded" on a
# loaded machine, golang/go#75804, fixed in Go 1.27).
# What a target finds is written to its package's
# testdata/fuzz/<Target>/ and fails `make unit` from then on: commit it
# with the fix.
FUZZTIME    ?= 50000x
# package:target pairs: every decoder of outside input. Each target's
# committed corpus (testdata/fuzz/<Target>/) holds its seeds and every
# input that ever broke something.
FUZZ_TARGETS := edge/wire:FuzzDecode edge/wire:FuzzReadTCP edge/wire:FuzzReadWS edge/wire:FuzzReadWSFrames \
	edge/wire:FuzzReceiptIDs edge/client:FuzzUpgradeRefused edge:FuzzReadUpgradeRequest edge:FuzzCanonicalOrigin edge:FuzzReadProxyHeader \
	token:FuzzVerifyGroups token:FuzzVerifyClaims \
	bus:FuzzFrameOf bus:FuzzIntake bus:FuzzDecodeReply bus:FuzzSessionMessages@10000x \
	protocol:FuzzParseSubject protocol:FuzzParseSessionEvent protocol:FuzzParseGroupSubject protocol:FuzzSplitGroups \
	protocol:FuzzParseAck protocol:FuzzParseMemberReply protocol:FuzzParseDeadLetterSubject \
	backend:FuzzGroupMembers dlq:FuzzReplayMsg dlq:FuzzEntryTokens producer:FuzzParseJSONPush cmd/pushctl:FuzzReadLines \
	cmd/edge:FuzzConfigFile@2000x cmd/pushctl:FuzzPushArgs@2000x \
	cmd/pushhttp/httpapi:FuzzDecodeBatch cmd/pushhttp/httpapi:FuzzHeaderOptions cmd/pushhttp/httpapi:FuzzParseParams
# What the binaries built here say they are (internal/version): git describe,
# or nothing without git (or outside a repository), and then they read their
# version from Go's build information.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS     := -X github.com/pushfabric/pushfabric/internal/version.stamp=$(VERSION)
# The race runtime sleeps a second at exit by default.
export GORACE := atexit_sleep_ms=0

.PHONY: test unit node-deps fuzz lint vuln deployments bench bench-idle bench-load bench-scale soak wscompare run build tools nats nats-keys clean

test: lint unit fuzz deployments

unit: $(NATS_CLI) node-deps
	PUSHFABRIC_REQUIRE_NATS_CLI=1 PUSHFABRIC_NATS_CLI=$(NATS_CLI) PUSHFABRIC_REQUIRE_NODE=1 RAPID_CHECKS=$(RAPID_CHECKS) \
		$(GO) test -race -count=1 -timeout 12m ./...

# The Node producer example's dependencies (examples/node-producer, the
# versions its package-lock.json pins), which TestNodeProducer runs it
# with: npm ci, again only when package.json or the lock file changes.
NODE_PRODUCER := examples/node-producer
node-deps: $(NODE_PRODUCER)/node_modules/.package-lock.json

$(NODE_PRODUCER)/node_modules/.package-lock.json: $(NODE_PRODUCER)/package.json $(NODE_PRODUCER)/package-lock.json
	cd $(NODE_PRODUCER) && npm ci --no-audit --no-fund

fuzz:
	@failed=; for pt in $(FUZZ_TARGETS); do \
		pkg=$${pt%%:*}; target=$${pt#*:}; time=$(FUZZTIME); \
		case $$target in *@*) [ "$(origin FUZZTIME)" = file ] && time=$${target#*@}; target=$${target%%@*};; esac; \
		echo "fuzz $$pkg $$target: $$time"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $$time ./$$pkg || failed="$$failed $$pkg:$$target"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz failed:$$failed"; exit 1; fi

lint: $(STATICCHECK)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cd tests/wscompare && $(GO) vet .   # its own module: keep it building

# Known vulnerabilities that the code reaches: govulncheck at a pinned
# version, against VULNDB when given (https://… or file:///path of a local
# copy); else vuln.go.dev when it answers; else a copy built here from the
# module proxy's snapshot of golang.org/x/vulndb at VULNDB_SNAPSHOT (its
# date is in the version: make it newer to see newer reports). Not part of
# make test: the database changes every day, and CI may reach none of them.
GOVULNCHECK := $(TOOLS)/govulncheck
GOVULNCHECK_VERSION := v1.9.0
VULNDB_SNAPSHOT := v0.0.0-20261105234957-e22db6528018
VULNDB      ?=
vuln: $(GOVULNCHECK)
	@db="$(VULNDB)"; \
	if [ -z "$$db" ] && curl -fsS --max-time 5 -o /dev/null https://vuln.go.dev/index/db.json 2>/dev/null; then db=https://vuln.go.dev; fi; \
	if [ -z "$$db" ]; then \
		out=$(BIN)/vulndb-$(VULNDB_SNAPSHOT); \
		if [ ! -s $$out/index/db.json ]; then \
			echo "vuln.go.dev is out of reach: building the database from golang.org/x/vulndb@$(VULNDB_SNAPSHOT) (the module proxy's copy)"; \
			tmp=$$(mktemp -d); \
			src=$$(cd $$tmp && GOFLAGS= $(GO) mod download -json golang.org/x/vulndb@$(VULNDB_SNAPSHOT) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
			rm -rf $$tmp; \
			if [ -z "$$src" ] || ! GOBIN=$(TOOLS) $(GO) install golang.org/x/vulndb/cmd/indexdb@$(VULNDB_SNAPSHOT) || \
				! $(TOOLS)/indexdb -vulns $$src/data/osv -out $$out; then \
				rm -rf $$out; \
				echo "make vuln: no vulnerability database within reach (vuln.go.dev, the module proxy's golang.org/x/vulndb); give a copy with VULNDB=file:///path/to/db" >&2; \
				exit 2; \
			fi; \
		fi; \
		db=file://$$out; \
	fi; \
	echo "govulncheck $(GOVULNCHECK_VERSION) -db $$db ./... ($$($(GO) env GOVERSION))"; \
	$(GOVULNCHECK) -db "$$db" ./...

$(GOVULNCHECK):
	GOBIN=$(TOOLS) $(GO) install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

# What deployments/ ships and nothing here can run (the Dockerfile, the
# compose cluster, the Kubernetes base, the NATS chart's values), parsed or
# rendered and held against the edge binary: a module of its own, so that
# the main one does not take kustomize.
deployments:
	cd deployments/check && $(GO) vet . && $(GO) test -race -count=1 .

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(NATS_CLI):
	GOBIN=$(BIN) $(GO) install github.com/nats-io/natscli/nats@$(NATS_CLI_VERSION)

tools: $(STATICCHECK) $(NATS_CLI)

# Only the stock nats CLI, as ./bin/nats: what the quickstart uses.
nats: $(NATS_CLI)

# nk, which makes NKeys, at the version of github.com/nats-io/nkeys go.mod pins.
NK          := $(BIN)/nk
$(NK):
	$(GO) build -o $(NK) github.com/nats-io/nkeys/nk

# An NKey per user of deployments/nats/push.conf: the seeds into $(SECRETS)
# (kept if there), the public keys into deployments/nats/keys.conf.
SECRETS     ?= secrets
nats-keys: $(NK)
	NK=$(NK) deployments/nats/mkkeys.sh $(SECRETS)

# The binaries, into ./bin.
build:
	GOBIN=$(BIN) $(GO) install -ldflags '$(LDFLAGS)' ./cmd/edge ./cmd/pushctl ./cmd/pushbench ./cmd/pushhttp

# End to end: NATS server, edge and clients in their own processes, beside a
# raw NATS baseline from the same run. LOAD_FLAGS / SCALE_FLAGS for more
# (pushbench load --help).
LOAD_FLAGS  ?= --sessions 1000 --duration 10s
SCALE_FLAGS ?= --sessions 19000
bench-load: build
	$(BIN)/pushbench load $(LOAD_FLAGS)

bench-scale: build
	$(BIN)/pushbench scale $(SCALE_FLAGS)

# An hour of churn on two edges sharing a NATS server, under steady acked
# pushes: memory, goroutines and open files over time, every push accounted
# for, and the edges back to their baseline after (pushbench soak --help).
# Its own target, never in make test. SOAK_FLAGS for another run, e.g.
# SOAK_FLAGS="--duration 10m --sessions 1000".
SOAK_FLAGS  ?= --duration 1h --sessions 2000
soak: build
	$(BIN)/pushbench soak $(SOAK_FLAGS)

# Micro benchmarks, benchstat-friendly: make bench > new.txt; benchstat old.txt new.txt
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./edge/... ./registry/... ./bus/...

# Server memory per idle connection over real sockets (clients in a child
# process), each transport in a fresh process. IDLE_CONNS up to ~19000
# under a 20,000 open-file limit.
IDLE_CONNS ?= 15000
bench-idle:
	@for transport in tcp ws tls wss; do \
		PUSHFABRIC_IDLE_CONNS=$(IDLE_CONNS) $(GO) test -run '^$$' -bench "IdleMemory/^$$transport\$$" -benchtime 1x ./edge/ || exit 1; \
	done

# WebSocket libraries side by side (a module of its own).
wscompare:
	cd tests/wscompare && $(GO) run . -conns $(IDLE_CONNS) -messages 1000000

# One edge node with everything on loopback: an embedded NATS server with
# JetStream on 4222 (data in ./data), WebSocket on 8080, framed TCP on 8081,
# clients authenticated with tokens signed by a secret made here once, the
# demo page at /demo/ on the WebSocket listener; no load balancer watches
# it, so Ctrl-C closes clients at once (--drain-delay 0).
run:
	@mkdir -p data
	@test -s data/jwt-secret || head -c 48 /dev/urandom | base64 > data/jwt-secret
	@GOBIN=$(BIN) $(GO) install -ldflags '$(LDFLAGS)' ./cmd/edge ./cmd/pushctl
	$(BIN)/edge --jwt-secret-file data/jwt-secret --drain-delay 0 --demo --quickstart

clean:
	rm -rf $(BIN)
