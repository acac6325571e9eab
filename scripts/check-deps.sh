#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, banned crates and sources of every crate in
# Cargo.lock, with cargo-deny. Installs cargo-deny (`cargo install --locked`, a few minutes on
# 2 cores) only when it is missing. Called by scripts/test.sh; runnable on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo >&2
  echo "check-deps: FAILED: $*" >&2
  exit 1
}

if ! cargo deny --version >/dev/null 2>&1; then
  echo "check-deps: installing cargo-deny (cargo install --locked cargo-deny; takes a few minutes)" >&2
  cargo install --locked --quiet cargo-deny || fail "could not install cargo-deny"
fi

echo "check-deps: $(cargo deny --version): licenses, bans, sources" >&2
# Duplicate versions are only warnings (deny.toml) and would drown the verdict: shown with
# `cargo deny check bans`, not here.
if ! cargo deny --locked --log-level error check --hide-inclusion-graph licenses bans sources; then
  fail "cargo deny rejected the dependency tree (see the errors above). A new license must be
allowed in deny.toml with a comment saying why; a banned crate or a non-crates.io source must go."
fi
echo "check-deps: OK" >&2
