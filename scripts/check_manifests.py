#!/usr/bin/env python3
"""What the Kubernetes schemas do not check: keybuzz-sync's deployment rules.

Called by scripts/check-deploy.sh (with the venv's Python, which has PyYAML):

    check_manifests.py --readme README.md --tests k8s/tests/alerts.test.yaml --out DIR \
        --overlays-dir k8s/overlays --example k8s/examples/backfill-job.yaml --secrets-example k8s/secrets.example.yaml \
        DIR/render/dev.yaml DIR/render/prod.yaml

For each rendered overlay it checks the rules below, then writes into DIR/<overlay>/:
  core.yaml                 the built-in kinds, plus the Job scripts/kube-run.sh would make
                            from the CronJob, for kubernetes-validate (schemas)
  keybuzz-sync.rules.yaml   the PrometheusRule's spec, for promtool check/test rules
  dashboard.rules.yaml      every dashboard query as a recording rule, for promtool's PromQL parser
Prints every violation ("FAIL [overlay] Kind/name: what is wrong") and exits 1 if there is any.
"""

import argparse
import json
import os
import re
import sys
import unicodedata

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube_run_job import job_from_cronjob  # noqa: E402

SCHEDULE = "*/5 * * * *"
TICK_SECONDS = 300
SYNC_MEMORY_LIMIT = 256 * 1024 * 1024
RUNBOOK_PREFIX = "https://github.com/keybuzz/keybuzz-sync#runbook-"
# Kinds with no schema in kubernetes-validate: checked here (and by promtool) instead.
CRD_KINDS = {("monitoring.coreos.com/v1", "PrometheusRule")}
# Volume types the "restricted" Pod Security Standard allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
# Alerts the project requires, and a metric each must be built on.
REQUIRED_ALERTS = {
    "KeybuzzSyncTenantErrorPersisting": ["keybuzz_sync_error_since_timestamp_seconds"],
    "KeybuzzSyncTenantLagHigh": ["keybuzz_sync_cursor_timestamp_seconds"],
    "KeybuzzSyncNoSuccessfulRun": ["keybuzz_sync_last_success_timestamp_seconds", "absent("],
    "KeybuzzSyncThrottlingHigh": ["keybuzz_sync_api_throttled_total", "keybuzz_sync_api_calls_total"],
}
# Metrics the dashboard must show (lag, throughput, errors, throttling, coverage, quarantine,
# duration).
DASHBOARD_METRICS = [
    "keybuzz_sync_cursor_timestamp_seconds", "keybuzz_sync_orders_written_total",
    "keybuzz_sync_items_written_total", "keybuzz_sync_error_since_timestamp_seconds",
    "keybuzz_sync_last_run_outcome", "keybuzz_sync_api_throttled_total",
    "keybuzz_sync_api_calls_total", "keybuzz_sync_orders_awaiting_items",
    "keybuzz_sync_orders_stored", "keybuzz_sync_orders_quarantined",
    "keybuzz_sync_last_run_duration_seconds",
]

errors = []


def fail(where, msg):
    errors.append(f"FAIL [{where}] {msg}")


def name_of(doc):
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def parse_duration(text):
    """Seconds of a duration like 4m, 240s, 1h30m (Go / humantime style); None if unreadable."""
    text = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
        return None
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def parse_quantity(q):
    """Bytes of a Kubernetes memory quantity (256Mi, 1G, 268435456)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTPE]i?)?", str(q))
    if not m:
        return None
    units = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    return float(m.group(1)) * units[m.group(2)]


def github_anchors(readme):
    """The anchors GitHub gives the README's headings."""
    anchors = set()
    seen = {}
    in_code = False
    for line in open(readme, encoding="utf-8"):
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        title = re.sub(r"`|\*\*|\[|\]\([^)]*\)", "", m.group(2)).strip().lower()
        slug = "".join(c for c in title if c in " -_" or unicodedata.category(c)[0] in "LN")
        slug = slug.replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def image_problem(image):
    if not image:
        return "has no image"
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" in image:
        return None
    if ":" not in last:
        return f"image {image!r} has no tag or digest (kustomize `images:` in the overlay must set one)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses the tag latest; use an explicit version tag or a digest"
    return None


def pod_specs(doc):
    """(description, pod spec) of every pod template a workload carries."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "CronJob":
        return [(name_of(doc), ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {})]
    if kind in ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return [(name_of(doc), (spec.get("template") or {}).get("spec") or {})]
    if kind == "Pod":
        return [(name_of(doc), spec)]
    return []


def all_containers(pod):
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod.get(key) or []:
            yield key, c


def check_pod(where, owner, pod, service_accounts=None):
    """The restricted Pod Security Standard, resources, images, service account token."""
    psc = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        fail(where, f"{owner}: automountServiceAccountToken must be false in the pod spec "
                    "(the pods never call the Kubernetes API)")
    sa = pod.get("serviceAccountName") or pod.get("serviceAccount")
    if not sa or sa == "default":
        fail(where, f"{owner}: set serviceAccountName to the project's ServiceAccount, not default")
    elif service_accounts is not None:
        if sa not in service_accounts:
            fail(where, f"{owner}: ServiceAccount {sa!r} is not part of the rendered manifests")
        elif service_accounts[sa].get("automountServiceAccountToken") is not False:
            fail(where, f"ServiceAccount/{sa}: automountServiceAccountToken must be false")
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(host):
            fail(where, f"{owner}: {host} is not allowed (restricted)")
    if psc.get("runAsUser") == 0:
        fail(where, f"{owner}: pod runAsUser 0 (root) is not allowed")
    for vol in pod.get("volumes") or []:
        types = set(vol) - {"name"}
        if not types <= RESTRICTED_VOLUMES:
            fail(where, f"{owner}: volume {vol.get('name')!r} of type {sorted(types)} is not allowed by "
                        "the restricted Pod Security Standard")
    for key, c in all_containers(pod):
        cname = f"{owner} {key[:-1]} {c.get('name')!r}"
        sc = c.get("securityContext") or {}
        run_as_non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if run_as_non_root is not True:
            fail(where, f"{cname}: runAsNonRoot must be true (container or pod securityContext)")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            fail(where, f"{cname}: runAsUser 0 (root) is not allowed")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(where, f"{cname}: securityContext.readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(where, f"{cname}: securityContext.allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            fail(where, f"{cname}: privileged is not allowed")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            fail(where, f"{cname}: securityContext.capabilities.drop must contain ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            fail(where, f"{cname}: capabilities.add {caps.get('add')} is not allowed (restricted)")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            fail(where, f"{cname}: seccompProfile.type must be RuntimeDefault (container or pod), got {seccomp!r}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                fail(where, f"{cname}: hostPort is not allowed")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    fail(where, f"{cname}: resources.{part}.{r} is missing (requests and limits everywhere)")
        problem = image_problem(c.get("image"))
        if problem:
            fail(where, f"{cname}: {problem}")


def container_env(c, configmaps):
    """The container's environment: explicit values, then envFrom ConfigMaps (by rendered name)."""
    env = {}
    for ef in c.get("envFrom") or []:
        ref = ef.get("configMapRef")
        if ref and ref.get("name") in configmaps:
            prefix = ef.get("prefix", "")
            for k, v in (configmaps[ref["name"]].get("data") or {}).items():
                env[prefix + k] = v
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = e.get("valueFrom")
    return env


def secret_sources(c, var):
    """Names of the Secrets a container may take `var` from."""
    names = set()
    for e in c.get("env") or []:
        if e.get("name") == var:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                names.add(ref.get("name"))
            return names  # an explicit entry wins over envFrom
    for ef in c.get("envFrom") or []:
        if ef.get("secretRef"):
            names.add(ef["secretRef"].get("name"))
    return names


def runs(c, word):
    return word in (c.get("command") or [])[-1:] + (c.get("args") or [])[:1]


def check_delta_cronjob(where, cj, configmaps):
    spec = cj.get("spec") or {}
    n = name_of(cj)
    if spec.get("schedule") != SCHEDULE:
        fail(where, f"{n}: schedule is {spec.get('schedule')!r}, must be {SCHEDULE!r}")
    if spec.get("concurrencyPolicy") != "Forbid":
        fail(where, f"{n}: concurrencyPolicy is {spec.get('concurrencyPolicy')!r}, must be Forbid "
                    "(two passes must never overlap)")
    sd = spec.get("startingDeadlineSeconds")
    if not isinstance(sd, int) or not 10 <= sd < TICK_SECONDS:
        fail(where, f"{n}: startingDeadlineSeconds must be set, between 10 and {TICK_SECONDS - 1} (got {sd!r})")
    for h in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if not isinstance(spec.get(h), int):
            fail(where, f"{n}: {h} must be set")
    job = (spec.get("jobTemplate") or {}).get("spec") or {}
    pod = (job.get("template") or {}).get("spec") or {}
    if job.get("completionMode") != "Indexed":
        fail(where, f"{n}: jobTemplate.spec.completionMode must be Indexed (one index per shard)")
    if not (job.get("backoffLimit") == 0 or job.get("backoffLimitPerIndex") == 0):
        fail(where, f"{n}: set backoffLimitPerIndex: 0 (or backoffLimit: 0): the next tick is the retry")
    if pod.get("restartPolicy") != "Never":
        fail(where, f"{n}: restartPolicy must be Never")
    for key, c in all_containers(pod):
        if runs(c, "migrate"):
            fail(where, f"{n}: {key[:-1]} {c.get('name')!r} runs migrate: migrations belong in their own "
                        "deploy-time Job, not in every 5-minute pass with the sync's credentials")
    deltas = [c for c in pod.get("containers") or [] if runs(c, "delta")]
    if len(deltas) != 1:
        fail(where, f"{n}: expected one container running `delta --all-tenants`, found {len(deltas)}")
        return
    c = deltas[0]
    if "--all-tenants" not in (c.get("args") or []):
        fail(where, f"{n}: the delta container must run `delta --all-tenants`")
    env = container_env(c, configmaps)
    budget = parse_duration(env.get("KEYBUZZ_MAX_DURATION")) if isinstance(env.get("KEYBUZZ_MAX_DURATION"), str) else None
    if budget is None:
        fail(where, f"{n}: KEYBUZZ_MAX_DURATION must be set to a duration (e.g. 4m), got {env.get('KEYBUZZ_MAX_DURATION')!r}")
    ads = job.get("activeDeadlineSeconds")
    if not isinstance(ads, int):
        fail(where, f"{n}: jobTemplate.spec.activeDeadlineSeconds must be set")
    else:
        if budget is not None and not ads > budget:
            fail(where, f"{n}: activeDeadlineSeconds ({ads}) must be above KEYBUZZ_MAX_DURATION ({budget:g} s): "
                        "Kubernetes must only kill a process that overran its own budget")
        if not ads < TICK_SECONDS:
            fail(where, f"{n}: activeDeadlineSeconds ({ads}) must be below {TICK_SECONDS} s, the schedule's period")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if ads + grace > TICK_SECONDS:
            fail(where, f"{n}: activeDeadlineSeconds + terminationGracePeriodSeconds ({ads} + {grace}) exceeds "
                        f"{TICK_SECONDS} s: a killed Job would still run at the next tick, which Forbid then skips")
    shards_raw = env.get("KEYBUZZ_SHARD_COUNT")
    try:
        shards = int(shards_raw)
    except (TypeError, ValueError):
        fail(where, f"{n}: KEYBUZZ_SHARD_COUNT must be a number, got {shards_raw!r}")
        shards = None
    comp, par = job.get("completions"), job.get("parallelism")
    if shards is not None and shards < 1:
        fail(where, f"{n}: KEYBUZZ_SHARD_COUNT must be at least 1")
    if not (comp == par == shards):
        fail(where, f"{n}: completions ({comp!r}), parallelism ({par!r}) and KEYBUZZ_SHARD_COUNT ({shards_raw!r}) "
                    "must be equal (set the count once: configMapGenerator keybuzz-sync-shards in the overlay, "
                    "with the component k8s/components/shard-count)")
    if env.get("KEYBUZZ_LOG_FORMAT") != "json":
        fail(where, f"{n}: KEYBUZZ_LOG_FORMAT must be json")
    mem = parse_quantity(((c.get("resources") or {}).get("limits") or {}).get("memory", ""))
    if mem is None or mem > SYNC_MEMORY_LIMIT:
        fail(where, f"{n}: the sync's memory limit must be at most 256Mi")
    # Tenant files: a Secret volume, mounted read-only where KEYBUZZ_TENANTS_DIR points.
    tdir = env.get("KEYBUZZ_TENANTS_DIR", "/etc/keybuzz-sync/tenants")
    mounts = {m.get("mountPath"): m for m in c.get("volumeMounts") or []}
    vols = {v.get("name"): v for v in pod.get("volumes") or []}
    m = mounts.get(tdir)
    if not m or "secret" not in vols.get(m.get("name"), {}):
        fail(where, f"{n}: the tenants dir {tdir} must be a mounted Secret volume")
    elif m.get("readOnly") is not True:
        fail(where, f"{n}: the tenants Secret must be mounted readOnly")
    return secret_sources(c, "DATABASE_URL")


def check_migrate_job(where, jobs, sync_db_secrets):
    migrate = []
    for job in jobs:
        pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in pod.get("containers") or []:
            if runs(c, "migrate"):
                migrate.append((job, c))
    if len(migrate) != 1:
        fail(where, f"expected exactly one Job running `migrate`, found {len(migrate)}")
        return
    job, c = migrate[0]
    src = secret_sources(c, "DATABASE_URL")
    if not src:
        fail(where, f"{name_of(job)}: DATABASE_URL must come from the migrator's Secret")
    elif src & (sync_db_secrets or set()):
        fail(where, f"{name_of(job)}: takes DATABASE_URL from {sorted(src & sync_db_secrets)}, the sync's "
                    "Secret; the migrator role needs its own Secret")


def check_rules(where, rule_doc, anchors, tests):
    spec = rule_doc.get("spec") or {}
    n = name_of(rule_doc)
    groups = spec.get("groups") or []
    if not groups:
        fail(where, f"{n}: no rule groups")
    alerts = {}
    for g in groups:
        if not g.get("name"):
            fail(where, f"{n}: a group without a name")
        for r in g.get("rules") or []:
            if not isinstance(r.get("expr"), str) or not r["expr"].strip():
                fail(where, f"{n}: rule {r.get('alert') or r.get('record')!r} has no expr")
            if "alert" not in r:
                continue
            a = r["alert"]
            alerts.setdefault(a, []).append(r)
            if "for" in r and parse_duration(r["for"]) is None:
                fail(where, f"{n}: alert {a}: `for: {r['for']}` is not a duration")
            if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                fail(where, f"{n}: alert {a}: labels.severity must be critical, warning or info")
            ann = r.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    fail(where, f"{n}: alert {a}: annotation {key} is missing")
            desc = ann.get("description", "")
            if "$labels.tenant" not in desc and "all tenants" not in desc:
                fail(where, f"{n}: alert {a}: the description must name the tenant ({{{{ $labels.tenant }}}}) "
                            "or say it concerns all tenants")
            url = ann.get("runbook_url", "")
            if not url.startswith(RUNBOOK_PREFIX):
                fail(where, f"{n}: alert {a}: runbook_url must start with {RUNBOOK_PREFIX}")
            elif url.split("#", 1)[1] not in anchors:
                fail(where, f"{n}: alert {a}: runbook_url anchor #{url.split('#', 1)[1]} is not a heading "
                            "of README.md")
    for a, needles in REQUIRED_ALERTS.items():
        if a not in alerts:
            fail(where, f"{n}: required alert {a} is missing")
            continue
        exprs = " ".join(r["expr"] for r in alerts[a])
        for needle in needles:
            if needle not in exprs:
                fail(where, f"{n}: alert {a} must use {needle}")
    # Every alert has a promtool test where it fires and one where it does not.
    fires, quiet = set(), set()
    for t in tests.get("tests") or []:
        for case in t.get("alert_rule_test") or []:
            (fires if case.get("exp_alerts") else quiet).add(case.get("alertname"))
    for a in alerts:
        if a not in fires:
            fail(where, f"alert {a} has no promtool test case where it fires (k8s/tests/alerts.test.yaml)")
        if a not in quiet:
            fail(where, f"alert {a} has no promtool test case where it does not fire (k8s/tests/alerts.test.yaml)")
    return spec


def check_dashboard(where, cm):
    n = name_of(cm)
    labels = (cm.get("metadata") or {}).get("labels") or {}
    if labels.get("grafana_dashboard") != "1":
        fail(where, f"{n}: needs the label grafana_dashboard: \"1\" for Grafana's sidecar")
    exprs = []
    for key, text in (cm.get("data") or {}).items():
        try:
            dash = json.loads(text)
        except json.JSONDecodeError as e:
            fail(where, f"{n}: {key} is not JSON: {e}")
            continue
        if not dash.get("uid"):
            fail(where, f"{n}: {key}: the dashboard needs a fixed uid")
        names = [v.get("name") for v in (dash.get("templating") or {}).get("list") or []]
        if "tenant" not in names:
            fail(where, f"{n}: {key}: no `tenant` template variable")
        for p in dash.get("panels") or []:
            if p.get("type") == "row":
                continue
            targets = p.get("targets") or []
            if not targets:
                fail(where, f"{n}: {key}: panel {p.get('title')!r} has no query")
            for t in targets:
                e = t.get("expr", "")
                if "$tenant" not in e:
                    fail(where, f"{n}: {key}: panel {p.get('title')!r} query does not filter on $tenant: {e}")
                exprs.append((p.get("title"), e))
    text = " ".join(e for _, e in exprs)
    for metric in DASHBOARD_METRICS:
        if metric not in text:
            fail(where, f"{n}: the dashboard shows nothing from {metric}")
    return exprs


def dashboard_rules(exprs):
    """Dashboard queries as recording rules, so promtool's parser checks their PromQL."""
    subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$tenant": ".*"}
    rules = []
    for i, (title, e) in enumerate(exprs):
        for k, v in subst.items():
            e = e.replace(k, v)
        rules.append({"record": f"dashboard:query_{i}", "expr": e})
    return {"groups": [{"name": "keybuzz-sync-dashboard-queries", "rules": rules}]}


def declared_shards(kustomization):
    """The shard count an overlay's kustomization.yaml sets (keybuzz-sync-shards count=N), if any."""
    with open(kustomization) as f:
        k = yaml.safe_load(f) or {}
    for gen in k.get("configMapGenerator") or []:
        if gen.get("name") == "keybuzz-sync-shards":
            for lit in gen.get("literals") or []:
                key, _, value = str(lit).partition("=")
                if key.strip() == "count":
                    return k, value.strip()
    return k, None


def check_shard_setting(where, overlay_dir, docs):
    """The overlay's one shard setting is the one the render carries (the component is applied)."""
    kpath = os.path.join(overlay_dir, "kustomization.yaml")
    if not os.path.exists(kpath):
        return
    k, count = declared_shards(kpath)
    if not any(str(c).rstrip("/").endswith("components/shard-count") for c in k.get("components") or []):
        fail(where, f"{kpath}: include the component ../../components/shard-count (it applies the shard count)")
    if count is None:
        fail(where, f"{kpath}: set the shard count: configMapGenerator keybuzz-sync-shards, behavior: merge, literals: [count=N]")
        return
    for d in docs:
        if d.get("kind") == "CronJob" and d["metadata"].get("name") == "keybuzz-sync-delta":
            got = ((d.get("spec") or {}).get("jobTemplate") or {}).get("spec", {}).get("completions")
            if str(got) != count:
                fail(where, f"CronJob/keybuzz-sync-delta: completions is {got!r} but {kpath} sets count={count}")


def check_rendered(path, out_dir, anchors, tests, overlays_dir=None):
    where = os.path.splitext(os.path.basename(path))[0]
    docs = load_docs(path)
    if overlays_dir:
        check_shard_setting(where, os.path.join(overlays_dir, where), docs)
    namespaces = [d for d in docs if d.get("kind") == "Namespace"]
    if len(namespaces) != 1:
        fail(where, f"expected one Namespace, found {len(namespaces)}")
        ns = None
    else:
        ns = namespaces[0]["metadata"]["name"]
        labels = namespaces[0]["metadata"].get("labels") or {}
        if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
            fail(where, f"Namespace/{ns}: label pod-security.kubernetes.io/enforce must be restricted")
    for d in docs:
        if d.get("kind") != "Namespace" and ns and (d.get("metadata") or {}).get("namespace") != ns:
            fail(where, f"{name_of(d)}: not in namespace {ns}")
        if d.get("kind") == "Secret":
            fail(where, f"{name_of(d)}: Secrets do not belong in the kustomization (secret manager; "
                        "see k8s/secrets.example.yaml)")
    service_accounts = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ServiceAccount"}
    configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    for d in docs:
        for owner, pod in pod_specs(d):
            check_pod(where, owner, pod, service_accounts)
    cronjobs = [d for d in docs if d.get("kind") == "CronJob"]
    delta = [d for d in cronjobs
             if any(runs(c, "delta") for c in pod_specs(d)[0][1].get("containers") or [])]
    sync_db_secrets = set()
    if len(delta) != 1:
        fail(where, f"expected one CronJob running `delta`, found {len(delta)}")
    else:
        sync_db_secrets = check_delta_cronjob(where, delta[0], configmaps) or set()
    for cj in cronjobs:
        if cj not in delta and (cj.get("spec") or {}).get("concurrencyPolicy") != "Forbid":
            fail(where, f"{name_of(cj)}: concurrencyPolicy must be Forbid")
    check_migrate_job(where, [d for d in docs if d.get("kind") == "Job"], sync_db_secrets)

    os.makedirs(os.path.join(out_dir, where), exist_ok=True)
    core = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CRD_KINDS]
    # The one-off Job scripts/kube-run.sh derives from the CronJob must pass the same rules.
    if len(delta) == 1:
        run = job_from_cronjob(delta[0], "keybuzz-sync-run-check", ["status", "--all-tenants"], 3600)
        check_pod(f"{where} kube-run", name_of(run), run["spec"]["template"]["spec"], service_accounts)
        core.append(run)
    with open(os.path.join(out_dir, where, "core.yaml"), "w") as f:
        yaml.safe_dump_all(core, f, sort_keys=False)
    for d in docs:
        api = d.get("apiVersion", "")
        if (api, d.get("kind")) not in CRD_KINDS and "/" in api and api.split("/")[0].count(".") > 0 \
                and not api.split("/")[0].endswith(".k8s.io"):
            fail(where, f"{name_of(d)}: {api} is a custom resource with no schema check here; "
                        "add it to CRD_KINDS with a check of its own")
    rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        fail(where, f"expected one PrometheusRule, found {len(rules)}")
    else:
        spec = check_rules(where, rules[0], anchors, tests)
        with open(os.path.join(out_dir, where, "keybuzz-sync.rules.yaml"), "w") as f:
            f.write(f"# Extracted from {name_of(rules[0])} in {path}; do not edit.\n")
            yaml.safe_dump(spec, f, sort_keys=False, width=1000)
    dashboards = [d for d in docs if d.get("kind") == "ConfigMap"
                  and any(k.endswith(".json") for k in (d.get("data") or {}))]
    if len(dashboards) != 1:
        fail(where, f"expected one dashboard ConfigMap, found {len(dashboards)}")
    else:
        exprs = check_dashboard(where, dashboards[0])
        with open(os.path.join(out_dir, where, "dashboard.rules.yaml"), "w") as f:
            yaml.safe_dump(dashboard_rules(exprs), f, sort_keys=False, width=1000)


def check_example(path):
    where = os.path.relpath(path)
    for d in load_docs(path):
        if not (d.get("metadata") or {}).get("namespace"):
            fail(where, f"{name_of(d)}: set metadata.namespace")
        for owner, pod in pod_specs(d):
            check_pod(where, owner, pod)
            for c in pod.get("containers") or []:
                if runs(c, "delta") or runs(c, "migrate"):
                    fail(where, f"{owner}: examples are for one-off commands; delta and migrate are deployed")


def check_secrets_example(path):
    where = os.path.relpath(path)
    for d in load_docs(path):
        if d.get("kind") != "Secret":
            fail(where, f"{name_of(d)}: only Secrets belong here")
            continue
        if d.get("data"):
            fail(where, f"{name_of(d)}: use stringData with placeholders, not data")
        for k, v in (d.get("stringData") or {}).items():
            if "CHANGE_ME" not in str(v):
                fail(where, f"{name_of(d)}: {k} must be a placeholder containing CHANGE_ME, never a real value")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", required=True)
    ap.add_argument("--tests", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--overlays-dir", help="where the overlays are (k8s/overlays): checks each one's shard setting")
    ap.add_argument("--example", action="append", default=[])
    ap.add_argument("--secrets-example", action="append", default=[])
    ap.add_argument("rendered", nargs="+")
    args = ap.parse_args()
    anchors = github_anchors(args.readme)
    with open(args.tests) as f:
        tests = yaml.safe_load(f)
    for path in args.rendered:
        check_rendered(path, args.out, anchors, tests, args.overlays_dir)
    for path in args.example:
        check_example(path)
    for path in args.secrets_example:
        check_secrets_example(path)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"check_manifests: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_manifests: OK ({len(args.rendered)} overlay(s), {len(args.example)} example(s))", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
