"""Benchmark: schedule precision with many experiments at once.

N experiments (default 50), each `@every <interval>` deleting one pod of its own 1-replica
Deployment, run together against the local cluster (operator as a separate process) until at
least `--slots` runs have injected. For every run: the delay from its slot (`spec.scheduledTime`)
to the injection (`status.targets[].injectedAt`), both recorded by the API objects.

    .venv/bin/python -m benchmarks.schedule_precision [--experiments 50] [--slots 100] [--interval 15s]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support.chaos import Chaos, experiment
from tests.support.tools import REPO
from tests.support.waiting import wait_for
from tests.support.workloads import deployment

from benchmarks.common import bench_environment, machine, other_operators, parse_samples, percentile, report

API_REQUESTS = "aftershock_api_requests_total"


def requests_by_operation(text: str, baseline: dict[str, float] | None = None) -> dict[str, float]:
    """The operator's own API requests by client operation (minus `baseline`)."""
    counts: dict[str, float] = {}
    for (name, labels), value in parse_samples(text, (API_REQUESTS,)).items():
        if name == API_REQUESTS:
            operation = dict(labels)["operation"]
            counts[operation] = value - (baseline or {}).get(operation, 0.0)
    return {op: n for op, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n}


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=50)
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--interval", default="15s")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "schedule-precision.json"
    )
    args = parser.parse_args()

    delays: list[float] = []
    claimed: list[float] = []  # slot → Injecting journaled (targets chosen, run claimed)
    started = time.monotonic()
    with bench_environment("bench-sched") as bench:
        api, namespace = bench.api, bench.namespace
        apps = client.AppsV1Api(api)
        chaos = Chaos(api, namespace)
        for i in range(args.experiments):
            apps.create_namespaced_deployment(namespace, deployment(f"svc-{i}", replicas=1))

        def all_ready() -> bool:
            items = apps.list_namespaced_deployment(namespace).items
            return len(items) == args.experiments and all((d.status.ready_replicas or 0) == 1 for d in items)

        wait_for(all_ready, timeout=300, message="every Deployment Ready")
        for i in range(args.experiments):
            body = experiment(f"tick-{i}", app=f"svc-{i}", objective="10s", timeout="30s")
            body["spec"].update(
                schedule=f"@every {args.interval}", successfulRunsHistoryLimit=50, failedRunsHistoryLimit=50
            )
            chaos.create_experiment(body)
        baseline = requests_by_operation(bench.operator.metrics())

        def injected_runs() -> list[dict[str, Any]] | None:
            runs = [
                r
                for r in chaos.runs()
                if any(t.get("injectedAt") for t in (r.get("status") or {}).get("targets", []))
            ]
            return runs if len(runs) >= args.slots else None

        runs = wait_for(injected_runs, timeout=900, interval=2, message=f"{args.slots} injected runs")
        for run in runs:
            slot = _time(run["spec"]["scheduledTime"])
            injected = min(_time(t["injectedAt"]) for t in run["status"]["targets"] if t.get("injectedAt"))
            delays.append((injected - slot).total_seconds())
            claimed.append((_time(run["status"]["startTime"]) - slot).total_seconds())
        skipped = [r for r in chaos.runs() if (r.get("status") or {}).get("phase") == "Skipped"]
        # the benchmark's operator claims as its namespace; another one watching it skews the figures
        elsewhere = [r for r in runs if r["status"].get("claimedBy") not in (None, namespace)]
        others = other_operators(api, namespace)
        requests = requests_by_operation(bench.operator.metrics(), baseline)
        runs_created = len(chaos.runs())

    result: dict[str, Any] = {
        "benchmark": "schedule precision",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "experiments": args.experiments,
        "interval": args.interval,
        "runs_measured": len(delays),
        "skipped_runs": len(skipped),
        "runs_claimed_by_another_operator": len(elsewhere),
        "other_operators_running": others,
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "slot_to_claim_seconds": {
            "median": round(statistics.median(claimed), 3),
            "p99": round(percentile(claimed, 99), 3),
        },
        # everything the operator asked of the API server after the experiments were created,
        # per run (ticks, runs, events, experiment status): what a burst of slots costs
        "api_requests_per_run": {op: round(n / max(1, runs_created), 2) for op, n in requests.items()},
        "slot_to_injection_seconds": {
            "median": round(statistics.median(delays), 3),
            "p99": round(percentile(delays, 99), 3),
            "max": round(max(delays), 3),
            "min": round(min(delays), 3),
        },
    }
    report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
