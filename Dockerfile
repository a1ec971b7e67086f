# ramp-controller as a static binary on a distroless base: no shell, no libc, runs as uid 65532.
#
#   docker build -t ramp-controller:0.1.0 .
#
# The musl target links everything statically (TLS is rustls with ring, so no OpenSSL either). ring and
# mimalloc (the controller's allocator: musl's own malloc doubles its CPU) compile C, hence gcc.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev gcc
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ramp-controller \
    && install -D target/release/ramp-controller /out/ramp-controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ramp-controller /usr/local/bin/ramp-controller
USER 65532:65532
# 8080: /healthz and /readyz; 8090: /metrics.
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/ramp-controller"]
