"""Benchmark: the operator at scale — memory, idle CPU, API requests at idle, schedule precision.

N experiments (`--experiments`: 10, 100 or 1000 for the curve), each `@every <interval>` deleting
the one pod of its own 1-replica Deployment, `--per-namespace` to a namespace, on `--nodes` kwok
nodes made for the run (default 100), with bare filler pods bound to those nodes up to `--pods`
pods in all (default 5 per experiment: 5,000 at N = 1,000). The experiments are created at an
even pace over `--spread` seconds (default 300); their slots are anchored at creation, so they are
spread evenly over 5 minutes too. The interval is longer than creation + settle + idle, so the
phases are:

  load      nodes, namespaces, Deployments and filler pods, all Ready; the operator running
  create    N experiments, evenly over --spread seconds
  settle    --settle seconds for the last status writes
  idle      --idle seconds in which no slot is due: operator RSS and CPU % of a core (/proc), and
            the API requests it issued (the API server counts them per FlowSchema; the operator
            runs as a ServiceAccount of its own, see common.attributed_identity)
  slots     --duration seconds (default --spread) from the first slot, in which every
            experiment's first slot falls: slot → injection per run, and the same usage figures
  teardown  namespaces (while the operator still runs, so it releases its finalizers), nodes

    .venv/bin/python -m benchmarks.scale --experiments 1000 [--spread 300] [--idle 60]

The operator watches `--namespace <prefix>-w-*` (a glob: one cluster-wide watch per kind, as an
install without -n), or each namespace by name with `--explicit-namespaces` (namespaced mode).
Raw JSON: benchmarks/results/scale-<N>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support.chaos import GROUP, VERSION, experiment
from tests.support.operator import OperatorProcess, start_operator
from tests.support.policies import OPT_IN, apply_policy, delete_policy, permissive
from tests.support.tools import REPO
from tests.support.workloads import deployment

from benchmarks.common import (
    BENCH_LABEL,
    DISPATCHED,
    Samples,
    Usage,
    attributed_identity,
    cluster_client,
    create_namespaces,
    delete_namespaces,
    ensure_crds,
    kubeconfig_path,
    kwok_nodes,
    list_json,
    machine,
    new_id,
    operator_log_tail,
    other_operators,
    parallel,
    parse_samples,
    ready_pod_count,
    report,
    say,
    scrape,
    summary,
    temp_log,
    total,
    usage,
    usage_between,
)

FAKE_IMAGE = "registry.invalid/aftershock/fake:1"
APISERVER_METRICS = (DISPATCHED, "apiserver_request_total")
OPERATOR_METRICS = (
    "aftershock_api_requests_total",
    "aftershock_cache_relists_total",
    "aftershock_cache_watch_starts_total",
    "aftershock_api_retries_total",
    "aftershock_reconcile_errors_total",
)


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def filler_pod(name: str, node: str, bench_id: str) -> dict[str, Any]:
    """A bare pod bound to `node` directly (no scheduler, no controller): load for the caches."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {BENCH_LABEL: bench_id, "app": "filler"}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": FAKE_IMAGE}],
            "terminationGracePeriodSeconds": 0,
        },
    }


class Window:
    """Operator usage, API requests it issued, and its own counters over one stretch of time."""

    def __init__(self, api: client.ApiClient, operator: OperatorProcess, flow_schema: str) -> None:
        self.api, self.operator, self.flow_schema = api, operator, flow_schema

    def _read(self) -> tuple[Usage, Samples, Samples]:
        return (
            usage(self.operator.process.pid),
            scrape(self.api, APISERVER_METRICS),
            parse_samples(self.operator.metrics(), OPERATOR_METRICS),
        )

    def start(self) -> None:
        self.before = self._read()

    def stop(self) -> dict[str, Any]:
        after = self._read()
        (u0, api0, op0), (u1, api1, op1) = self.before, after
        seconds = u1.at - u0.at

        def ours(labels: dict[str, str]) -> bool:
            return labels.get("flow_schema") == self.flow_schema

        requests = total(api1, DISPATCHED, ours) - total(api0, DISPATCHED, ours)
        everyone = total(api1, "apiserver_request_total") - total(api0, "apiserver_request_total")
        counters = {}
        for (name, labels), value in sorted(op1.items()):
            if delta := value - op0.get((name, labels), 0.0):
                counters[name + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"] = delta
        return {
            **usage_between(u0, u1),
            "operator_api_requests": int(requests),
            "operator_api_requests_per_second": round(requests / seconds, 3),
            "all_clients_requests_per_second": round(everyone / seconds, 2),
            "operator_counters": counters,
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=10, help="N (the curve: 10, 100, 1000)")
    parser.add_argument("--pods", type=int, default=None, help="pods in all (default 5 per experiment)")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--per-namespace", type=int, default=20)
    parser.add_argument(
        "--spread", type=float, default=300, help="seconds the creations and slots spread over"
    )
    parser.add_argument("--settle", type=float, default=20)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--duration", type=float, default=None, help="slot window (default: --spread)")
    parser.add_argument(
        "--explicit-namespaces", action="store_true", help="namespaced mode: -n per namespace"
    )
    parser.add_argument("--load-timeout", type=float, default=1200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    n = args.experiments
    pods_total = max(args.pods if args.pods is not None else 5 * n, n)
    duration = args.duration if args.duration is not None else args.spread
    interval = math.ceil(args.spread + args.settle + args.idle + 30)
    out = args.out or REPO / "benchmarks" / "results" / f"scale-{n}.json"

    bench_id = new_id()
    prefix = f"bench-scale-{bench_id}"
    system = f"{prefix}-system"
    namespaces = [f"{prefix}-w-{i:03d}" for i in range(math.ceil(n / args.per_namespace))]
    selector = f"{BENCH_LABEL}={bench_id}"
    kubeconfig = kubeconfig_path()
    ensure_crds(kubeconfig)
    api = cluster_client(kubeconfig)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    objects = client.CustomObjectsApi(api)
    timings: dict[str, float] = {}
    result: dict[str, Any] = {}
    started = phase = time.monotonic()

    def lap(name: str) -> None:
        nonlocal phase
        timings[name] = round(time.monotonic() - phase, 1)
        phase = time.monotonic()
        say(f"{name}: {timings[name]} s")

    operator: OperatorProcess | None = None
    others: list[str] = []
    stack = ExitStack()
    try:
        with stack:
            # --- load ------------------------------------------------------------------------
            say(f"benchmark {prefix}: {n} experiments, {pods_total} pods, {args.nodes} nodes")
            create_namespaces(api, [system], {BENCH_LABEL: bench_id})
            stack.callback(delete_namespaces, api, [system], 120)
            policy_name = f"{prefix}"
            apply_policy(api, permissive(policy_name))
            stack.callback(delete_policy, api, policy_name)
            identity, flow_schema = stack.enter_context(
                attributed_identity(api, kubeconfig, system, temp_log("kubeconfig"))
            )
            nodes = stack.enter_context(kwok_nodes(api, bench_id, args.nodes))
            log_path = temp_log("operator.log")
            scope = (
                [arg for ns in namespaces for arg in ("--namespace", ns)]
                if args.explicit_namespaces
                else ["--namespace", f"{prefix}-w-*"]
            )
            if args.explicit_namespaces:  # listed per namespace: they must exist first
                create_namespaces(api, namespaces, {**OPT_IN, BENCH_LABEL: bench_id})
            # with a glob, the operator starts first: kopf may not notice a namespace that
            # appeared just before it started (tests/integration/conftest.py, _operator_first)
            operator = start_operator(
                identity,
                log_path,
                *scope,
                *("--operator-namespace", system, "--identity", prefix),
                "--trust-unreviewed",  # no webhook here: what is measured is the run, not admission
            )
            stack.callback(operator.stop)
            say(f"operator pid {operator.process.pid}, log {log_path}")
            others = other_operators(api, system)
            if others:
                say(f"WARNING: other operators are running and may act on these namespaces: {others}")
            # registered after the operator, so they go first: it releases its finalizers
            stack.callback(_teardown, api, namespaces, timings)
            if not args.explicit_namespaces:
                create_namespaces(api, namespaces, {**OPT_IN, BENCH_LABEL: bench_id})

            def create_deployment(i: int) -> None:
                body = deployment(f"svc-{i:04d}", replicas=1, node_selector={BENCH_LABEL: bench_id})
                body["metadata"]["labels"][BENCH_LABEL] = bench_id
                body["spec"]["template"]["metadata"]["labels"][BENCH_LABEL] = bench_id
                apps.create_namespaced_deployment(
                    namespaces[i // args.per_namespace], body, _preload_content=False
                )

            def create_filler(j: int) -> None:
                body = filler_pod(f"filler-{j:05d}", nodes[j % len(nodes)], bench_id)
                core.create_namespaced_pod(namespaces[j % len(namespaces)], body, _preload_content=False)

            parallel(create_deployment, range(n))
            parallel(create_filler, range(pods_total - n))
            deadline = time.monotonic() + args.load_timeout
            while (ready := ready_pod_count(api, selector)) < pods_total:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{ready} of {pods_total} pods Ready after {args.load_timeout:.0f} s")
                time.sleep(5)
            lap("load")

            # --- create, paced: experiment i at i * spread / n ----------------------------------
            begin = time.monotonic()
            behind = 0.0
            for i in range(n):
                pause = begin + i * args.spread / n - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load, not synchronising
                else:
                    behind = max(behind, -pause)
                body = experiment(f"e-{i:04d}", app=f"svc-{i:04d}", objective="10s", timeout="30s")
                body["metadata"]["labels"] = {BENCH_LABEL: bench_id}
                body["spec"]["schedule"] = f"@every {interval}s"
                objects.create_namespaced_custom_object(
                    GROUP, VERSION, namespaces[i // args.per_namespace], "chaosexperiments", body
                )
            lap("create")
            exps = list_json(api, f"/apis/{GROUP}/{VERSION}/chaosexperiments", labelSelector=selector)
            first_slots = sorted(
                _time(e["metadata"]["creationTimestamp"]) + dt.timedelta(seconds=interval) for e in exps
            )
            first_slot = first_slots[0]

            # --- settle, then idle: no slot is due ----------------------------------------------
            time.sleep(args.settle)
            lap("settle")
            window = Window(api, operator, flow_schema)
            idle_for = min(args.idle, (first_slot - _utcnow()).total_seconds() - 3)
            if idle_for < 10:
                say(f"only {idle_for:.0f} s before the first slot: creation fell behind by {behind:.0f} s")
            window.start()
            time.sleep(max(idle_for, 0))
            idle = window.stop()
            lap("idle")

            # --- slots: every experiment's first slot ------------------------------------------
            time.sleep(max(0.0, (first_slot - _utcnow()).total_seconds()))
            lap("until_first_slot")
            window_end = first_slot + dt.timedelta(seconds=duration)
            window.start()
            time.sleep(max(0.0, (window_end - _utcnow()).total_seconds()))
            busy = window.stop()
            expected = sum(1 for s in first_slots if s < window_end)
            runs = _runs_in(api, prefix, first_slot, window_end, expected)
            lap("slots")

            delays = [r["injected"] - r["slot"] for r in runs if "injected" in r]
            claims = [r["claimed"] - r["slot"] for r in runs if "claimed" in r]
            phases: dict[str, int] = {}
            for r in runs:
                phases[r["phase"]] = phases.get(r["phase"], 0) + 1
            result = {
                "benchmark": "scale",
                "date": _utcnow().strftime("%Y-%m-%d"),
                "machine": machine(),
                "kubernetes": client.VersionApi(api).get_code().git_version,
                "experiments": n,
                "namespaces": len(namespaces),
                "scope": "namespaced (-n per namespace)"
                if args.explicit_namespaces
                else "glob (cluster-wide)",
                "nodes": args.nodes,
                "pods": {"deployments": n, "filler": pods_total - n, "total": pods_total},
                "schedule": f"@every {interval}s, created evenly over {args.spread:.0f} s",
                "creation_fell_behind_seconds": round(behind, 1),
                "idle": idle,
                "slots": {
                    **busy,
                    "runs_expected": expected,
                    "runs_found": len(runs),
                    "runs_injected": len(delays),
                    "runs_claimed_by_another_operator": sum(
                        1 for r in runs if r.get("claimed_by") not in (None, prefix)
                    ),
                    "phases": phases,
                    "slot_to_claim_seconds": summary(claims),
                    "slot_to_injection_seconds": summary(delays),
                },
                # seen at the start or at the end of the measurement
                "other_operators_running": sorted({*others, *other_operators(api, system)}),
                "operator_log": str(log_path),
            }
    except BaseException:
        if operator is not None:
            say("operator log (last lines):\n" + operator_log_tail(operator))
        raise
    lap("teardown")
    timings["total"] = round(time.monotonic() - started, 1)
    result["timings_seconds"] = timings
    report(result, out)
    return 0


def _teardown(api: client.ApiClient, namespaces: list[str], timings: dict[str, float]) -> None:
    began = time.monotonic()
    left = delete_namespaces(api, namespaces, timeout=900)
    if left:
        say(f"namespaces still present after teardown: {', '.join(left)}")
    timings["teardown_namespaces"] = round(time.monotonic() - began, 1)


def _runs_in(
    api: client.ApiClient, prefix: str, start: dt.datetime, end: dt.datetime, expected: int
) -> list[dict[str, Any]]:
    """The scheduled runs whose slot lies in [start, end), once each has injected or ended
    (waiting at most two minutes), as slot / claimed / injected times in epoch seconds."""
    terminal = {"Completed", "Aborted", "Skipped", "Errored"}
    deadline = time.monotonic() + 120
    while True:
        runs = []
        for run in list_json(api, f"/apis/{GROUP}/{VERSION}/chaosruns"):
            if not run["metadata"]["namespace"].startswith(prefix):
                continue
            slot = _time(run["spec"]["scheduledTime"])
            if not start <= slot < end:
                continue
            status = run.get("status") or {}
            row: dict[str, Any] = {"slot": slot.timestamp(), "phase": status.get("phase") or "Pending"}
            if status.get("claimedBy"):
                row["claimed_by"] = status["claimedBy"]
            if status.get("startTime"):
                row["claimed"] = _time(status["startTime"]).timestamp()
            injected = [_time(t["injectedAt"]) for t in status.get("targets") or [] if t.get("injectedAt")]
            if injected:
                row["injected"] = min(injected).timestamp()
            runs.append(row)
        settled = all("injected" in r or r["phase"] in terminal for r in runs)
        if (len(runs) >= expected and settled) or time.monotonic() > deadline:
            return runs
        time.sleep(2)


if __name__ == "__main__":
    raise SystemExit(main())
