#!/usr/bin/env bash
# The whole test suite: unit tests, the simulator's tests and the integration tests against
# a real Postgres, the SP-API simulator over HTTP and a Pushgateway; then the deployment
# checks (k8s manifests, alert rules and their tests) and the dependency policy (cargo deny).
# The cargo tests run first: with `set -e` a cargo failure ends the run before the other checks.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
. scripts/pushgateway.sh
ensure_postgres
ensure_pushgateway
cargo test --workspace --all-targets
bash scripts/check-deploy.sh
bash scripts/check-deps.sh
