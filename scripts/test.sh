#!/usr/bin/env bash
# The whole test suite: unit tests, the simulator's tests and the integration tests against
# a real Postgres and the SP-API simulator over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_postgres
cargo test --workspace --all-targets
