#!/usr/bin/env python3
"""Turns the delta CronJob (JSON on stdin) into a one-off Job running other keybuzz-sync args.

    kube_run_job.py NAME [--deadline SECONDS] -- ARGS...   < cronjob.json   > job.json

Used by scripts/kube-run.sh, and by scripts/check-deploy.sh to check that such a Job still
meets the same rules (restricted security context, resources, no token). The Job keeps the
CronJob's image, service account, Secrets, settings and tenant mount; it is a plain Job with
one pod (no shards: KEYBUZZ_SHARD_COUNT is dropped) and no pass budget (KEYBUZZ_MAX_DURATION
is dropped: the command ends when it is done, within --deadline).
"""

import argparse
import json
import sys


def job_from_cronjob(cj, name, args, deadline):
    template = json.loads(json.dumps(cj["spec"]["jobTemplate"]["spec"]["template"]))
    pod = template["spec"]
    containers = [c for c in pod["containers"] if "delta" in (c.get("args") or [])[:1]]
    if len(containers) != 1:
        raise SystemExit("kube_run_job: the CronJob has no single delta container")
    c = containers[0]
    c["name"] = "keybuzz-sync"
    c["args"] = list(args)
    c["env"] = [e for e in c.get("env") or [] if e.get("name") not in ("KEYBUZZ_SHARD_COUNT", "KEYBUZZ_MAX_DURATION")]
    pod["containers"] = [c]
    pod["restartPolicy"] = "Never"
    pod["terminationGracePeriodSeconds"] = 30
    labels = dict((cj.get("metadata") or {}).get("labels") or {})
    labels["app.kubernetes.io/component"] = "run"
    template.setdefault("metadata", {})["labels"] = dict(labels)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": cj["metadata"].get("namespace"), "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 86400,
            "template": template,
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--deadline", type=int, default=3600)
    ap.add_argument("args", nargs="+")
    a = ap.parse_args()
    json.dump(job_from_cronjob(json.load(sys.stdin), a.name, a.args, a.deadline), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
