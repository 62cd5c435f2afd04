# meshd: make demo runs the main job on a local sandbox; make test runs every test against real parts.
SHELL := /bin/bash
GO ?= go
BIN := bin

.PHONY: all build image test unit bench lint testenv testenv-aws demo demo-down clean fuzz deploy-manifest

all: build

# VERSION is what meshctl version and meshd --version print: the git description of the checkout, else "dev".
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X github.com/meshd-io/meshd/internal/cli.Version=$(VERSION)" -o $(BIN)/meshctl ./cmd/meshctl
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN)/meshd ./cmd/meshd

# image: meshd's container image, built without a Docker daemon or base image: for each of IMAGE_ARCHS
# (linux/amd64 and linux/arm64, for Graviton node groups) the static binary (CGO_ENABLED=0, GOARCH=<arch>) as
# /meshd, this machine's CA bundle for AWS's TLS, user 65532:65532, no shell; the images go under one OCI
# image index tagged $(IMAGE), the name charts/meshd runs. It writes the OCI layout bin/meshd-image and the OCI
# archive bin/meshd-image.tar, checks every platform's image and prints its size. Push both platforms with a
# registry tool, e.g.
#   skopeo copy --all oci:bin/meshd-image:latest docker://$(IMAGE)    or    crane push bin/meshd-image $(IMAGE)
IMAGE ?= ghcr.io/meshd-io/meshd:latest
IMAGE_ARCHS ?= amd64 arm64
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt

image:
	set -e; for arch in $(IMAGE_ARCHS); do \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags='-s -w -X main.version=$(VERSION)' -o $(BIN)/image/$$arch/meshd ./cmd/meshd; \
	done
	$(GO) run ./cmd/mkimage $(foreach arch,$(IMAGE_ARCHS),--binary $(BIN)/image/$(arch)/meshd) --ca-certs $(CA_CERTS) --ref $(IMAGE) \
	  --out $(BIN)/meshd-image --archive $(BIN)/meshd-image.tar

# deploy-manifest writes deploy/meshd.yaml: charts/meshd rendered with its default values (helm template, the
# pinned helm of scripts/testenv.sh), for kubectl apply without Helm. TestDeployManifestIsTheChart keeps it so.
deploy-manifest:
	scripts/testenv.sh helm
	scripts/deploy-manifest.sh > deploy/meshd.yaml.tmp && mv deploy/meshd.yaml.tmp deploy/meshd.yaml

# testenv installs the real parts the tests run against (moto, etcd, kube-apiserver, CoreDNS); the first
# run on a machine builds kube-apiserver and CoreDNS from the Go module proxy (minutes), later runs are instant.
testenv:
	scripts/testenv.sh all

testenv-aws:
	scripts/testenv.sh moto

# test: unit tests, then integration tests against moto, kube-apiserver + etcd and CoreDNS. It prints what
# go test prints (a line a package, the output of failed tests) and ends with a line counting the tests
# passed, failed and skipped, the skips grouped by reason (cmd/testreport). Nothing is skipped in CI: CI=true
# turns a missing part into a failure, and any skip into a failed run.
test: testenv lint
	$(GO) build -o $(BIN)/testreport ./cmd/testreport
	set -o pipefail; eval "$$(scripts/testenv.sh env | sed 's/^/export /')" && \
	  $(GO) test -count=1 -timeout 30m -json ./... | $(BIN)/testreport $(if $(filter true,$(CI)),-fail-on-skip)

unit:
	$(GO) test -count=1 -short ./...

# bench: planner, observe and Corefile benchmarks (3 runs each), then the daemon's on the sandbox (one run
# each, about 15 minutes: drift-repair, replication and external-address latency over 20 events at three
# spacings and two intervals, idle cost over a 65 s window for 3 and 10 clusters); prints a table. make test
# runs no benchmark.
bench: testenv
	set -o pipefail; eval "$$(scripts/testenv.sh env | sed 's/^/export /')" && \
	  $(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./internal/... | tee bench.out && \
	  $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./cmd/meshd/ | tee -a bench.out
	@scripts/benchtable.sh bench.out

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzMerge -fuzztime 60s ./internal/corefile/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files --others --exclude-standard '*.go' 2>/dev/null)); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: build testenv
	scripts/demo.sh

demo-down:
	scripts/demo.sh down

clean:
	rm -rf $(BIN) bench.out
