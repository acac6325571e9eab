# syntax=docker/dockerfile:1
# The image the CronJob and the Jobs in k8s/ run: the keybuzz-sync binary alone on a slim Debian.
# Not built on the project's machines (no Docker engine there); build it in the release pipeline:
#   docker build \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     -t registry.example.invalid/keybuzz-sync:0.1.0 .
#
# Base images are pinned by exact version tag. For reproducible builds pin their digests too:
# pass e.g. --build-arg RUST_IMAGE=docker.io/library/rust:1.95.0-bookworm@sha256:<digest>
# (`docker buildx imagetools inspect rust:1.95.0-bookworm` prints it). Both stages are
# bookworm, so the binary runs on the glibc it was linked against.
ARG RUST_IMAGE=docker.io/library/rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:12.11-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Smaller binary; no Cargo.toml change needed.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_TERM_COLOR=never

# 1. Dependencies, in a layer of their own: rebuilt only when Cargo.toml or Cargo.lock change.
#    The workspace has two members (. and spapi-sim) and a declared bench, so cargo needs every
#    manifest and a stub for each target it would otherwise refuse to load; it then compiles
#    all of keybuzz-sync's dependencies (every dependency of a target is compiled, used or
#    not). spapi-sim is only a dev-dependency: not built for the binary.
COPY Cargo.toml Cargo.lock ./
COPY spapi-sim/Cargo.toml spapi-sim/Cargo.toml
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    mkdir -p src benches spapi-sim/src \
 && echo 'fn main() {}' >src/main.rs \
 && : >src/lib.rs \
 && echo 'fn main() {}' >benches/pass.rs \
 && : >spapi-sim/src/lib.rs \
 && echo 'fn main() {}' >spapi-sim/src/main.rs \
 && cargo build --release --locked -p keybuzz-sync --bin keybuzz-sync \
 # Forget the stubs' own build output, so the real sources are compiled whatever their mtimes.
 && rm -rf src benches spapi-sim/src target/release/keybuzz-sync target/release/keybuzz-sync.d \
      target/release/.fingerprint/keybuzz-sync-* target/release/deps/keybuzz_sync-* \
      target/release/deps/libkeybuzz_sync-*

# 2. The sources (migrations/ is embedded by sqlx::migrate! at compile time).
COPY src src
COPY migrations migrations
COPY benches benches
COPY spapi-sim/src spapi-sim/src
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked -p keybuzz-sync --bin keybuzz-sync \
 # The real binary, not the stub: it knows its subcommands.
 && ./target/release/keybuzz-sync --help | grep -q 'delta' \
 && ./target/release/keybuzz-sync --version

FROM ${RUNTIME_IMAGE}
ARG RUNTIME_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="keybuzz-sync" \
      org.opencontainers.image.description="Syncs sellers' Amazon orders (SP-API) into KeyBuzz's Postgres; one pass per run" \
      org.opencontainers.image.source="https://github.com/keybuzz/keybuzz-sync" \
      org.opencontainers.image.url="https://github.com/keybuzz/keybuzz-sync" \
      org.opencontainers.image.documentation="https://github.com/keybuzz/keybuzz-sync#deploying-on-kubernetes" \
      org.opencontainers.image.vendor="KeyBuzz" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
# rustls verifies Amazon's and Postgres' certificates against the system roots: the CA bundle
# is copied from the build image (Debian's ca-certificates) rather than installed here, which
# would also bring openssl into an image that never uses it.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/release/keybuzz-sync /usr/local/bin/keybuzz-sync
# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd entry (the pods set the
# same UID/GID).
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/keybuzz-sync"]
CMD ["--help"]
