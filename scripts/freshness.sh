#!/usr/bin/env bash
# Measures how fresh light tenants stay while a heavy tenant onboards: BEFORE (no
# --max-duration, a run lasts as long as the heavy tenant's pass) and AFTER (--max-duration
# fitting the CronJob's tick). About 5 minutes; not part of the default test run.
#
# Time is scaled by 10: the simulator answers at Amazon's rates x 10, the simulated CronJob
# (concurrencyPolicy Forbid: a run starts at the first tick after the previous run ended) ticks
# every 30 s (5 min) and the budget is 24 s (4 min). The test prints one line per mode, in
# scaled seconds and in real minutes. The test itself: tests/integration/fleet.rs,
# measure_freshness_while_a_heavy_tenant_onboards.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_postgres
exec cargo test --test integration fleet::measure_freshness_while_a_heavy_tenant_onboards \
  -- --ignored --exact --nocapture
