# ramp-controller on a distroless base with glibc: no shell, no package manager, runs as uid 65532.
#
#   docker build -t ramp-controller:0.1.0 .
#
# Built against glibc rather than as a static musl binary: musl's memcpy has no fast path for the short
# copies a controller makes all the time, and the musl build used about a fifth more CPU for the same
# releases (docs/performance.md, "The shipped build's libc"). The builder is Debian bookworm, the release
# the runtime image's glibc comes from. TLS is rustls with ring, so no OpenSSL; ring and mimalloc (the
# controller's allocator) compile C, which the builder's gcc does.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ramp-controller \
    && install -D target/release/ramp-controller /out/ramp-controller

# glibc and libgcc_s, which is all the binary links beyond itself (`ldd`: libc, libm, libgcc_s).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ramp-controller /usr/local/bin/ramp-controller
USER 65532:65532
# 8080: /healthz and /readyz; 8090: /metrics.
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/ramp-controller"]
