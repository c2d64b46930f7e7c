# syntax=docker/dockerfile:1
# The pushfabric image: the edge and pushctl, static, on distroless as a
# non-root user. From the repository's root:
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t pushfabric:dev .
#   docker run --rm pushfabric:dev --help          # the edge
#   docker run --rm --entrypoint /pushctl pushfabric:dev --help
#
# VERSION is what the binaries say they are (--version, the startup log
# line, pushfabric_build_info), stamped as the Makefile stamps it; left
# empty they fall back to Go's build information. deployments/README.md
# says how compose and Kubernetes run it.

# The toolchain go.mod names (toolchain go1.27.3), so the image builds what
# CI tests.
FROM golang:1.27.3-bookworm AS build
WORKDIR /src
# Modules first: this layer is kept until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
# Static binaries (no cgo: distroless/static has no libc), without the
# build machine's paths in them.
RUN CGO_ENABLED=0 go build -trimpath \
        -ldflags "-s -w -X github.com/pushfabric/pushfabric/internal/version.stamp=${VERSION}" \
        -o /out/ ./cmd/edge ./cmd/pushctl

# CA certificates and tzdata, nothing else; :nonroot runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/edge /out/pushctl /
USER 65532:65532
# WebSocket, framed TCP, admin (/metrics, /healthz, /readyz). The edge
# listens on loopback unless told otherwise: give --ws-listen :8080 and the
# others (deployments/compose and deployments/k8s do, in their config files).
EXPOSE 8080 8081 9090
ENTRYPOINT ["/edge"]
