#!/usr/bin/env bash
# A full demo sync on this machine: the project's SP-API simulator, Postgres, two tenants of one
# simulated seller (one through Orders API v0, one through v2026-01-01), a delta pass, and the
# status of each. Uses DATABASE_URL's server if set, else the local one, else a throwaway cluster;
# the demo itself lives in its own database, keybuzz_demo, recreated on each run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/postgres.sh
ensure_postgres

echo "==> building" >&2
cargo build --quiet -p keybuzz-sync -p spapi-sim --bins
bin=target/debug

base_url="${DATABASE_URL%%\?*}"
demo_url="${base_url%/*}/keybuzz_demo"
psql "$DATABASE_URL" -qAtc 'DROP DATABASE IF EXISTS keybuzz_demo' >/dev/null
psql "$DATABASE_URL" -qAtc 'CREATE DATABASE keybuzz_demo' >/dev/null

work=$(mktemp -d)
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/tenants"
cat >"$work/tenants/demo-v0.json" <<'JSON'
{"refreshToken": "Atzr|demo-v0", "region": "eu", "marketplaceIds": ["A13V1IB3VIYZZH"], "ordersApi": "v0"}
JSON
cat >"$work/tenants/demo-2026.json" <<'JSON'
{"refreshToken": "Atzr|demo-2026", "region": "eu", "marketplaceIds": ["A13V1IB3VIYZZH"], "ordersApi": "2026-01-01"}
JSON

# Amazon's usage plans, 100 times faster, so the demo takes seconds instead of an hour.
"$bin/spapi-sim" --rate-scale 100 --grant 'Atzr|demo-v0=DEMO-SELLER' --grant 'Atzr|demo-2026=DEMO-SELLER' \
  --seed DEMO-SELLER=250 >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 100); do
  grep -q 'listening on' "$work/sim.out" 2>/dev/null && break
  sleep 0.1
done
sim_url=$(sed -n 's/^spapi-sim listening on //p' "$work/sim.out")
[ -n "$sim_url" ] || { echo "the simulator did not start:" >&2; cat "$work/sim.log" >&2; exit 1; }
echo "==> SP-API simulator at $sim_url (250 orders for one seller)" >&2

export DATABASE_URL="$demo_url"
export KEYBUZZ_TENANTS_DIR="$work/tenants"
export SPAPI_ENDPOINT="$sim_url"
export LWA_TOKEN_URL="$sim_url/auth/o2/token"
export LWA_CLIENT_ID=sim-client-id
export LWA_CLIENT_SECRET=sim-client-secret
export KEYBUZZ_LOG_FORMAT=text

echo "==> keybuzz-sync migrate" >&2
"$bin/keybuzz-sync" migrate
echo "==> keybuzz-sync delta --all-tenants --max-duration 2m" >&2
time "$bin/keybuzz-sync" delta --all-tenants --max-duration 2m
echo "==> a second pass: nothing new, nothing rewritten" >&2
"$bin/keybuzz-sync" delta --all-tenants

for tenant in demo-v0 demo-2026; do
  echo
  echo "==> keybuzz-sync status --tenant $tenant"
  "$bin/keybuzz-sync" status --tenant "$tenant"
done
echo
echo "==> keybuzz-sync status --all-tenants"
"$bin/keybuzz-sync" status --all-tenants
echo
echo "==> keybuzz-sync history --tenant demo-v0"
"$bin/keybuzz-sync" history --tenant demo-v0
echo
echo "==> keybuzz-sync check --all-tenants"
"$bin/keybuzz-sync" check --all-tenants
echo
echo "==> keybuzz-sync status --tenant demo-2026 --json"
"$bin/keybuzz-sync" status --tenant demo-2026 --json
echo
echo "==> the two API versions wrote the same normalized rows:"
psql "$DATABASE_URL" -qAt <<'SQL'
SELECT format('orders differing between v0 and v2026: %s', count(*)) FROM (
  (SELECT external_order_id, status, purchase_date, last_update_date, fulfillment_channel,
          order_total_amount::numeric(20,2), order_total_currency FROM orders WHERE tenant_id = 'demo-v0'
   EXCEPT
   SELECT external_order_id, status, purchase_date, last_update_date, fulfillment_channel,
          order_total_amount::numeric(20,2), order_total_currency FROM orders WHERE tenant_id = 'demo-2026')
) d;
SELECT format('items differing between v0 and v2026: %s', count(*)) FROM (
  (SELECT external_order_id, order_item_id, quantity_ordered, quantity_shipped, item_price_amount::numeric(20,2),
          item_tax_amount::numeric(20,2), shipping_price_amount::numeric(20,2), promotion_discount_amount::numeric(20,2)
     FROM order_items WHERE tenant_id = 'demo-v0'
   EXCEPT
   SELECT external_order_id, order_item_id, quantity_ordered, quantity_shipped, item_price_amount::numeric(20,2),
          item_tax_amount::numeric(20,2), shipping_price_amount::numeric(20,2), promotion_discount_amount::numeric(20,2)
     FROM order_items WHERE tenant_id = 'demo-2026')
) d;
SELECT format('%-10s %-20s %-18s %10s %s', tenant_id, external_order_id, status, order_total_amount, order_total_currency)
  FROM orders WHERE tenant_id = 'demo-2026' ORDER BY last_update_date DESC LIMIT 5;
SQL
