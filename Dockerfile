# syntax=docker/dockerfile:1
#
# The dispatcher image: a static binary on distroless/static, run as the
# non-root user 65532. Nothing site-specific is baked in:
#
#   /etc/dispatcher/config.yaml   the configuration (DISPATCHER_CONFIG), mount it read-only
#   /etc/dispatcher/templates/    optional template overrides: mount them and set
#                                 TEMPLATE_DIR=/etc/dispatcher/templates (the defaults
#                                 are embedded in the binary)
#   secrets                       environment variables (or NAME_FILE files), never in the image
#
# Build:  docker build -t viogen/dispatcher:dev .
# Run:    docker run -v $PWD/deploy/config/viogen.yaml:/etc/dispatcher/config.yaml:ro \
#           -e KAFKA_BROKERS=kafka:9092 -e REDIS_URL=redis://redis:6379/0 viogen/dispatcher:dev
# docs/operations.md ("Deploying") has compose and Kubernetes.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The same command deploy/docker_test.go builds with (it checks the flags
# match and that the result is static).
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/dispatcher ./cmd/dispatcher

# deploy/compose's target: the same binary and user on distroless's debug
# variant, whose busybox wget runs the compose healthcheck on /readyz.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS compose
COPY --from=build /out/dispatcher /dispatcher
ENV DISPATCHER_CONFIG=/etc/dispatcher/config.yaml \
    HTTP_ADDR=:8080 \
    LOG_FORMAT=json
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/dispatcher"]
CMD ["run"]

# The production image (the default target): no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
COPY --from=build /out/dispatcher /dispatcher
ENV DISPATCHER_CONFIG=/etc/dispatcher/config.yaml \
    HTTP_ADDR=:8080 \
    LOG_FORMAT=json
# Admin HTTP: /healthz, /readyz, /metrics, the acknowledgement API and the
# Twilio callbacks.
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/dispatcher"]
CMD ["run"]
