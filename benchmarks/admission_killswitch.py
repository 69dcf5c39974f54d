"""Benchmark: admission latency and the kill switch, with many experiments and partitions live.

The operator runs as its own process and serves its validating webhook (`--webhook-port`, as
tests/integration/conftest.py starts it). Loaded first: `--experiments` (default 1,000) suspended
scheduled experiments, and `--partitions` (default 100) run-once network-partition experiments,
each against its own 1-replica Deployment, whose NetworkPolicies are held for 10 minutes. Then:

  admission    `--creates` (default 200) creates of new suspended experiments, one after another,
               every one through the webhook: client-side latency p50/p99, and the API server's
               own measure of the webhook call (apiserver_admission_webhook_admission_duration_
               seconds) over the same calls. One refused create first proves the webhook is in
               the path.
  kill switch  the benchmark's ChaosPolicy patched to `suspend: true`: time from the patch until
               no NetworkPolicy of any run is left (listed every 0.1 s), and until every
               partition run is terminal; at most `--duration` seconds (default 60).

    .venv/bin/python -m benchmarks.admission_killswitch [--experiments 1000] [--partitions 100]

The kill switch is cluster-wide (a suspended ChaosPolicy stops every operator's runs): run it
where nobody else is testing. Raw JSON: benchmarks/results/admission-killswitch.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException
from tests.support.chaos import GROUP, VERSION, experiment, partition
from tests.support.net import free_port
from tests.support.operator import OperatorProcess, start_operator
from tests.support.policies import OPT_IN, apply_policy, delete_policy, permissive
from tests.support.tools import REPO
from tests.support.workloads import deployment

from benchmarks.common import (
    BENCH_LABEL,
    cluster_client,
    create_namespaces,
    delete_namespaces,
    ensure_crds,
    gone,
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
)

WEBHOOK_SECONDS = "apiserver_admission_webhook_admission_duration_seconds"
HANDLER_SECONDS = "aftershock_admission_seconds"
RUN_LABEL = "aftershock.dev/run"
TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}
T = TypeVar("T")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def suspended_experiment(name: str) -> dict[str, Any]:
    """A scheduled experiment that never runs: it costs the operator an index entry."""
    body = experiment(name, app=f"{name}-app", objective="10s", timeout="30s")
    body["spec"].update(schedule="@every 5m", suspend=True)
    return body


def _webhook_registered(api: client.ApiClient, name: str) -> bool:
    configs = (
        client.AdmissionregistrationV1Api(api)
        .list_validating_webhook_configuration(field_selector=f"metadata.name={name}")
        .items
    )
    return bool(configs and configs[0].webhooks)


def _wait(probe: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout:.0f} s")
        time.sleep(interval)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=1000, help="suspended experiments loaded")
    parser.add_argument("--partitions", type=int, default=100, help="network partitions active")
    parser.add_argument("--creates", type=int, default=200, help="creates measured through the webhook")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=10, help="kwok nodes for the partitioned pods")
    parser.add_argument("--duration", type=float, default=60, help="longest wait for the kill switch")
    parser.add_argument(
        "--skip-kill-switch",
        action="store_true",
        help="measure admission only (a shared cluster: the kill switch stops every operator's runs)",
    )
    parser.add_argument("--load-timeout", type=float, default=900)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "admission-killswitch.json"
    )
    args = parser.parse_args()

    bench_id = new_id()
    prefix = f"bench-adm-{bench_id}"
    system = f"{prefix}-system"
    webhook_config = f"aftershock.{prefix}"
    namespaces = [f"{prefix}-w-{i:02d}" for i in range(args.namespaces)]
    kubeconfig = kubeconfig_path()
    ensure_crds(kubeconfig)
    api = cluster_client(kubeconfig)
    apps = client.AppsV1Api(api)
    objects = client.CustomObjectsApi(api)
    policy_name = prefix
    timings: dict[str, float] = {}
    result: dict[str, Any] = {}
    started = phase = time.monotonic()

    def lap(name: str) -> None:
        nonlocal phase
        timings[name] = round(time.monotonic() - phase, 1)
        phase = time.monotonic()
        say(f"{name}: {timings[name]} s")

    def create(namespace: str, body: dict[str, Any]) -> None:
        objects.create_namespaced_custom_object(GROUP, VERSION, namespace, "chaosexperiments", body)

    def our_network_policies() -> list[dict[str, Any]]:
        items = list_json(api, "/apis/networking.k8s.io/v1/networkpolicies", labelSelector=RUN_LABEL)
        return [p for p in items if p["metadata"]["namespace"].startswith(prefix)]

    def partition_runs() -> list[dict[str, Any]]:
        runs = list_json(api, f"/apis/{GROUP}/{VERSION}/chaosruns")
        return [
            r
            for r in runs
            if r["metadata"]["namespace"].startswith(prefix)
            and str(r["spec"].get("experiment", "")).startswith("p-")
        ]

    operator: OperatorProcess | None = None
    others: list[str] = []
    kill_switch: dict[str, Any] = {"skipped": "--skip-kill-switch"}
    try:
        with ExitStack() as stack:
            say(f"benchmark {prefix}: {args.experiments} suspended, {args.partitions} partitions")
            create_namespaces(api, [system], {BENCH_LABEL: bench_id})
            stack.callback(delete_namespaces, api, [system], 120)
            apply_policy(api, permissive(policy_name))
            stack.callback(delete_policy, api, policy_name)  # also lifts the kill switch
            nodes = stack.enter_context(kwok_nodes(api, bench_id, args.nodes))
            log_path = temp_log("operator.log")
            operator = start_operator(
                kubeconfig,
                log_path,
                "--namespace",
                f"{prefix}-w-*",
                "--operator-namespace",
                system,
                "--review-key-namespace",  # its own, not the test suite's default
                system,
                "--webhook-port",
                str(free_port()),
                "--webhook-config",
                webhook_config,
                "--identity",
                prefix,
            )
            stack.callback(
                gone,
                lambda: client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(
                    webhook_config
                ),
            )
            stack.callback(
                gone,
                lambda: client.AdmissionregistrationV1Api(api).delete_mutating_webhook_configuration(
                    webhook_config
                ),
            )
            stack.callback(operator.stop)
            stack.callback(delete_namespaces, api, namespaces, 600)  # first: the operator still runs
            say(f"operator pid {operator.process.pid}, log {log_path}")
            others = other_operators(api, system)
            if others:
                say(f"WARNING: other operators are running and may act on these namespaces: {others}")
            _wait(lambda: _webhook_registered(api, webhook_config), 60, "webhook configuration")
            create_namespaces(api, namespaces, {**OPT_IN, BENCH_LABEL: bench_id})

            def create_deployment(j: int) -> None:
                body = deployment(f"part-{j:03d}", replicas=1, node_selector={BENCH_LABEL: bench_id})
                body["spec"]["template"]["metadata"]["labels"][BENCH_LABEL] = bench_id
                apps.create_namespaced_deployment(
                    namespaces[j % len(namespaces)], body, _preload_content=False
                )

            parallel(create_deployment, range(args.partitions))
            selector = f"{BENCH_LABEL}={bench_id}"
            _wait(
                lambda: ready_pod_count(api, selector) >= args.partitions,
                args.load_timeout,
                "partition targets Ready",
            )
            parallel(
                lambda i: create(namespaces[i % len(namespaces)], suspended_experiment(f"s-{i:04d}")),
                range(args.experiments),
                workers=8,
            )
            lap("load_suspended")
            for j in range(args.partitions):
                body = experiment(
                    f"p-{j:03d}",
                    app=f"part-{j:03d}",
                    objective="10s",
                    timeout="5m",
                    fault=partition(duration="10m"),
                )
                create(namespaces[j % len(namespaces)], body)
            _wait(
                lambda: len(our_network_policies()) >= args.partitions,
                args.load_timeout,
                f"{args.partitions} NetworkPolicies",
                interval=2,
            )
            lap("load_partitions")

            # --- admission -------------------------------------------------------------------
            refused = experiment("refused", app="x")
            refused["spec"]["target"]["namespace"] = (
                "default"  # cross-namespace, not opted in: policy says no
            )
            try:
                create(namespaces[0], refused)
                raise AssertionError("the webhook admitted a cross-namespace experiment: is it in the path?")
            except ApiException as exc:
                if exc.status != 403:
                    raise
                refusal = str(exc.body)[:300]

            def ours(webhook: str) -> Callable[[dict[str, str]], bool]:
                def match(labels: dict[str, str]) -> bool:
                    return (
                        labels.get("name") == f"{webhook}.{webhook_config}"
                        and labels.get("operation") == "CREATE"
                    )

                return match

            before = scrape(api, (WEBHOOK_SECONDS,))
            handled_before = parse_samples(operator.metrics(), (HANDLER_SECONDS,))
            latencies: list[float] = []
            for k in range(args.creates):
                began = time.perf_counter()
                create(namespaces[k % len(namespaces)], suspended_experiment(f"new-{k:04d}"))
                latencies.append(time.perf_counter() - began)
            after = scrape(api, (WEBHOOK_SECONDS,))
            handled_after = parse_samples(operator.metrics(), (HANDLER_SECONDS,))
            by_webhook: dict[str, dict[str, float | int | None]] = {}
            for webhook in ("review-experiments", "experiments"):  # the order the API server calls them
                calls = total(after, f"{WEBHOOK_SECONDS}_count", ours(webhook)) - total(
                    before, f"{WEBHOOK_SECONDS}_count", ours(webhook)
                )
                spent = total(after, f"{WEBHOOK_SECONDS}_sum", ours(webhook)) - total(
                    before, f"{WEBHOOK_SECONDS}_sum", ours(webhook)
                )

                def handled(labels: dict[str, str], webhook: str = webhook) -> bool:
                    return labels.get("webhook") == webhook

                n = total(handled_after, f"{HANDLER_SECONDS}_count", handled) - total(
                    handled_before, f"{HANDLER_SECONDS}_count", handled
                )
                inside = total(handled_after, f"{HANDLER_SECONDS}_sum", handled) - total(
                    handled_before, f"{HANDLER_SECONDS}_sum", handled
                )
                by_webhook[webhook] = {
                    "calls_seen_by_apiserver": int(calls),
                    "mean_seconds_seen_by_apiserver": round(spent / calls, 4) if calls else None,
                    "handler_mean_seconds": round(inside / n, 4) if n else None,
                }
            webhooks = {
                name: int(after[key] - before.get(key, 0.0))
                for key in after
                if key[0] == f"{WEBHOOK_SECONDS}_count" and after[key] - before.get(key, 0.0)
                if dict(key[1]).get("operation") == "CREATE"
                for name in [dict(key[1]).get("name", "")]
            }
            active_partitions = len(our_network_policies())
            lap("admission")

            # --- kill switch -----------------------------------------------------------------
            if not args.skip_kill_switch:
                kill_switch = kill_switch_seconds(
                    objects, policy_name, stack, our_network_policies, partition_runs, args.duration
                )
                kill_switch["partitions"] = args.partitions
            lap("kill_switch")

            result = {
                "benchmark": "admission and kill switch",
                "date": _utcnow().strftime("%Y-%m-%d"),
                "machine": machine(),
                "kubernetes": client.VersionApi(api).get_code().git_version,
                "experiments_loaded": args.experiments + args.partitions,
                "suspended_experiments": args.experiments,
                "namespaces": len(namespaces),
                "nodes": len(nodes),
                "admission": {
                    "active_partitions": active_partitions,
                    "refused_probe": refusal,
                    "create_seconds": summary(latencies),
                    "our_webhooks": by_webhook,
                    "create_calls_by_webhook": webhooks,  # every client's: another webhook here adds latency
                },
                "kill_switch": kill_switch,
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
    report(result, args.out)
    return 0


def kill_switch_seconds(
    objects: client.CustomObjectsApi,
    policy: str,
    stack: ExitStack,
    network_policies: Callable[[], list[dict[str, Any]]],
    runs: Callable[[], list[dict[str, Any]]],
    duration: float,
) -> dict[str, Any]:
    """Patch `policy` to `suspend: true`; seconds until no NetworkPolicy of a run is left (listed
    every 0.1 s) and until every partition run is terminal, each waited for at most `duration`."""

    def suspend(value: bool) -> None:
        objects.patch_cluster_custom_object(
            GROUP, VERSION, "chaospolicies", policy, {"spec": {"suspend": value}}
        )

    stack.callback(suspend, False)  # the kill switch is cluster-wide: lifted first on the way out
    began = time.monotonic()
    suspend(True)
    patched = time.monotonic() - began
    left = len(network_policies())
    while left and time.monotonic() - began < duration:
        time.sleep(0.1)
        left = len(network_policies())
    reverted = time.monotonic() - began if not left else None
    phases: dict[str, int] = {}
    while time.monotonic() - began < duration:
        phases = {}
        for run in runs():
            phase = (run.get("status") or {}).get("phase") or "Pending"
            phases[phase] = phases.get(phase, 0) + 1
        if all(p in TERMINAL for p in phases):
            break
        time.sleep(0.2)
    terminal = time.monotonic() - began if all(p in TERMINAL for p in phases) else None
    return {
        "patch_seconds": round(patched, 3),
        "all_network_policies_gone_seconds": round(reverted, 2) if reverted is not None else None,
        "network_policies_left": left,
        "all_runs_terminal_seconds": round(terminal, 2) if terminal is not None else None,
        "run_phases": phases,
        "poll_interval_seconds": 0.1,
    }


if __name__ == "__main__":
    raise SystemExit(main())
