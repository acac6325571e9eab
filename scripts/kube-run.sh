#!/usr/bin/env bash
# Runs one keybuzz-sync command in the cluster, as the CronJob would (same image, service
# account, Secrets, settings and tenant files), as a one-off Job; prints its output and exits
# with its exit code. For the runbook: status, check, history, items, backfill.
#
#   scripts/kube-run.sh [-n NAMESPACE] [--deadline SECONDS] [--keep] -- status --all-tenants
#   scripts/kube-run.sh -- check --all-tenants --max-error-age 30m --max-lag 2h
#   scripts/kube-run.sh --deadline 21600 -- backfill --tenant ecomlg-001 --via reports --since 2026-01-01T00:00:00Z --wait
#
# Needs kubectl (with rights to create Jobs and read logs in the namespace) and python3.
# The Job is deleted afterwards unless --keep.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

ns=keybuzz-sync
deadline=3600
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--namespace) ns=$2; shift 2 ;;
    --deadline) deadline=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; break ;;
    *) echo "usage: $0 [-n NAMESPACE] [--deadline SECONDS] [--keep] -- KEYBUZZ-SYNC ARGS..." >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [-n NAMESPACE] [--deadline SECONDS] [--keep] -- KEYBUZZ-SYNC ARGS..." >&2; exit 2; }

name="keybuzz-sync-run-$(date +%s)-$$"
kubectl -n "$ns" get cronjob keybuzz-sync-delta -o json \
  | python3 "$here/kube_run_job.py" --deadline "$deadline" "$name" "$@" \
  | kubectl -n "$ns" create -f - >/dev/null
echo "kube-run: job/$name in $ns: keybuzz-sync $*" >&2
cleanup() { [ -n "$keep" ] || kubectl -n "$ns" delete job "$name" --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Wait for the pod to start (or fail to), then follow its log to the end.
for _ in $(seq 1 120); do
  phase=$(kubectl -n "$ns" get pods -l job-name="$name" -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  case "$phase" in Running|Succeeded|Failed) break ;; esac
  sleep 1
done
kubectl -n "$ns" logs -f "job/$name" || true

# The container's exit code is the command's.
code=""
for _ in $(seq 1 60); do
  code=$(kubectl -n "$ns" get pods -l job-name="$name" \
    -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}' 2>/dev/null || true)
  [ -n "$code" ] && break
  sleep 1
done
if [ -z "$code" ]; then
  echo "kube-run: job/$name did not finish; kubectl -n $ns describe job/$name" >&2
  keep=1
  exit 1
fi
exit "$code"
