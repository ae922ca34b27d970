# syntax=docker/dockerfile:1
# The causeway binary (federator, gateway, dnsshim, CLI) as a static binary
# on distroless, running as an unprivileged user. Multi-platform:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always) -t causeway .
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux TARGETARCH VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/causeway ./cmd/causeway

# static: no libc, no shell; :nonroot runs as 65532:65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/causeway /usr/local/bin/causeway
USER 65532:65532
# federator gRPC, Certs.Sign, admin; gateway QUIC, admin; dnsshim DNS, admin.
EXPOSE 7443/tcp 7444/tcp 9090/tcp 4433/udp 9091/tcp 5353/udp 5353/tcp 9092/tcp
ENTRYPOINT ["/usr/local/bin/causeway"]
CMD ["--help"]
