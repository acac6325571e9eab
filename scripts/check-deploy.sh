#!/usr/bin/env bash
# Checks the deployment artifacts offline; fails loudly, naming what is wrong. Called by
# scripts/test.sh after the cargo tests; runnable on its own.
#
#   1. renders every overlay (k8s/overlays/*) with `kubectl kustomize`;
#   2. scripts/check_manifests.py: what schemas miss (Forbid, schedule, budget vs deadlines,
#      Indexed shards, restricted security fields, requests/limits, image tags, service account
#      token, migrate Job apart from the CronJob, alert annotations and runbook anchors, the
#      dashboard); it also splits each render into built-in kinds and the PrometheusRule;
#   3. kubernetes-validate --strict on the built-in kinds, the example Job and the example
#      Secrets, for each Kubernetes version in KUBE_VERSIONS. The PrometheusRule (a CRD, no
#      schema there) is checked by step 2 and by promtool instead;
#   4. promtool check rules (the PrometheusRule's spec and the dashboard's queries) and
#      promtool test rules k8s/tests/alerts.test.yaml.
#
# Installs what is missing: kubernetes-validate into a venv under target/check-deploy (PyPI),
# promtool from Debian's `prometheus` package (apt-get). kubectl must be there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt.sh

started=$SECONDS
out=target/check-deploy
venv=$out/venv
KUBERNETES_VALIDATE_VERSION=1.37.0
# The oldest Kubernetes the manifests support (backoffLimitPerIndex is on by default from 1.29)
# and the newest schema the package ships.
KUBE_VERSIONS=${KUBE_VERSIONS:-"1.30 1.37"}

fail() {
  echo >&2
  echo "check-deploy: FAILED: $*" >&2
  exit 1
}
step() { echo "==> check-deploy: $*" >&2; }

# --- tools --------------------------------------------------------------------------------
command -v kubectl >/dev/null 2>&1 || fail "kubectl is missing (this check renders with \`kubectl kustomize\`)"

if ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus || fail "promtool is missing and Debian's prometheus package could not be installed"
  command -v promtool >/dev/null 2>&1 || fail "the prometheus package brought no promtool"
fi

if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KUBERNETES_VALIDATE_VERSION"; then
  step "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    apt_install python3-venv || fail "python3 cannot make a venv and python3-venv could not be installed"
    rm -rf "$venv"
    python3 -m venv "$venv" || fail "python3 -m venv $venv failed"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
    || fail "pip could not install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

# --- 1. render ----------------------------------------------------------------------------
rm -rf "$out/render" "$out"/overlay-*
mkdir -p "$out/render"
overlays=()
for dir in k8s/overlays/*/; do
  name=$(basename "$dir")
  kubectl kustomize "$dir" >"$out/render/$name.yaml" 2>"$out/render/$name.err" \
    || fail "kubectl kustomize $dir: $(cat "$out/render/$name.err")"
  overlays+=("$name")
done
[ "${#overlays[@]}" -gt 0 ] || fail "no overlay under k8s/overlays"
step "rendered overlays: ${overlays[*]}"

# --- 2. project rules ---------------------------------------------------------------------
examples=(k8s/examples/*.yaml)
example_args=()
for f in "${examples[@]}"; do example_args+=(--example "$f"); done
rendered=()
for o in "${overlays[@]}"; do rendered+=("$out/render/$o.yaml"); done
"$venv/bin/python" -B scripts/check_manifests.py --readme README.md --tests k8s/tests/alerts.test.yaml \
  --out "$out" --overlays-dir k8s/overlays --secrets-example k8s/secrets.example.yaml "${example_args[@]}" "${rendered[@]}" \
  || fail "the manifests break the rules above (scripts/check_manifests.py)"

# --- 3. Kubernetes schemas, strict --------------------------------------------------------
for v in $KUBE_VERSIONS; do
  for f in "${overlays[@]/#/$out/}" "${examples[@]}" k8s/secrets.example.yaml; do
    file=$f
    [ -d "$f" ] && file=$f/core.yaml
    if ! "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$v" "$file" >"$out/validate.log" 2>&1; then
      cat "$out/validate.log" >&2
      fail "$file does not validate against the Kubernetes $v schemas (strict)"
    fi
  done
done
step "schemas: ${overlays[*]}, ${#examples[@]} example(s), secrets example valid for Kubernetes $KUBE_VERSIONS (strict)"

# --- 4. alert rules -----------------------------------------------------------------------
for o in "${overlays[@]}"; do
  dir=$out/$o
  promtool check rules "$dir/keybuzz-sync.rules.yaml" "$dir/dashboard.rules.yaml" >"$dir/promtool-check.log" 2>&1 \
    || { cat "$dir/promtool-check.log" >&2; fail "promtool check rules: the $o overlay's alert rules or dashboard queries are invalid"; }
  cp k8s/tests/alerts.test.yaml "$dir/alerts.test.yaml"
  (cd "$dir" && promtool test rules alerts.test.yaml) >"$dir/promtool-test.log" 2>&1 \
    || { cat "$dir/promtool-test.log" >&2; fail "promtool test rules: an alert of the $o overlay does not behave as k8s/tests/alerts.test.yaml expects"; }
done
step "promtool: rules and dashboard queries valid, alert tests pass ($(promtool --version 2>&1 | head -n 1 | awk '{print $3}'))"

echo "check-deploy: OK ($((SECONDS - started)) s)" >&2
