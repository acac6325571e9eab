# The image k8s/cronjob.yaml runs. Not built in CI here (no Docker engine on these machines).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin keybuzz-sync

FROM debian:bookworm-slim
# rustls verifies Amazon's certificates against the system roots.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/keybuzz-sync /usr/local/bin/keybuzz-sync
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/keybuzz-sync"]
