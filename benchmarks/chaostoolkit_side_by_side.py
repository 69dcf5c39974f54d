"""Benchmark: the same pod delete started three ways against the same Deployment, alternating.

  (a) aftershock: creating a ChaosRun of a ChaosExperiment (what `aftershock trigger` does)
  (b) Chaos Toolkit: `chaos run` of that experiment's export (`aftershock export chaostoolkit`)
  (c) the floor: one bare DELETE of a pod through the API, from this process

Each is timed from its intent (the create call, the process start, the delete call) to the first
DELETED event of a target pod seen by this script's own watch. `chaos run` includes its process
start and its imports; a ChaosRun includes the operator's admission checks, policy, steady-state
wait and journal writes before it touches anything.

    .venv/bin/python -m benchmarks.chaostoolkit_side_by_side [--rounds 10] [--out benchmarks/results/chaostoolkit-side-by-side.json]

Needs the local cluster (make cluster-up) or KUBECONFIG pointing at one, and the test extras
(chaostoolkit, chaostoolkit-kubernetes).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from tests.support.chaos import GROUP, VERSION, Chaos, experiment
from tests.support.tools import REPO
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

from benchmarks.common import bench_environment, machine, report, say, summary

APP = "target"
REPLICAS = 3


class Deletions:
    """The first DELETED event of each pod in the namespace, stamped on arrival (monotonic clock)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.deleted: dict[str, float] = {}
        self._watch = watch.Watch()
        self._listed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        core = client.CoreV1Api(self.api)
        with contextlib.suppress(Exception):  # stop() ends the stream mid-read
            version = core.list_namespaced_pod(self.namespace).metadata.resource_version
            self._listed.set()
            for event in self._watch.stream(
                core.list_namespaced_pod, self.namespace, resource_version=version, timeout_seconds=3600
            ):
                if event["type"] == "DELETED":
                    self.deleted.setdefault(event["object"].metadata.uid, time.monotonic())
        self._listed.set()

    def start(self) -> None:
        self._thread.start()
        self._listed.wait(timeout=30)  # every later deletion arrives as an event

    def stop(self) -> None:
        self._watch.stop()

    def first_after(self, since: float, before: set[str], timeout: float = 60) -> float:
        """Seconds from `since` to the first DELETED event of one of `before`'s pods."""

        def seen() -> float | None:
            hits = [t for uid, t in self.deleted.items() if uid in before and t >= since]
            return min(hits) if hits else None

        moment: float = wait_for(seen, timeout=timeout, interval=0.005, message="a DELETED event")
        return moment - since


def all_finished(chaos: Chaos) -> bool:
    ended = ("Completed", "Aborted", "Errored", "Skipped")
    return all((r.get("status") or {}).get("phase") in ended for r in chaos.runs("kill"))


def settle(api: client.ApiClient, namespace: str) -> set[str]:
    wait_for(lambda: len(ready_pods(api, namespace, APP)) == REPLICAS, timeout=120, message="all Ready")
    return {p.metadata.uid for p in ready_pods(api, namespace, APP)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/results/chaostoolkit-side-by-side.json"
    )
    args = parser.parse_args()
    timings: dict[str, list[float]] = {"aftershock": [], "chaos_run": [], "bare_delete": []}
    with bench_environment("ctk") as bench, tempfile.TemporaryDirectory() as tmp:
        api, namespace = bench.api, bench.namespace
        core = client.CoreV1Api(api)
        client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment(APP, replicas=REPLICAS))
        chaos = Chaos(api, namespace)
        body = experiment("kill", app=APP, objective="10s", timeout="60s")
        body["spec"].update(schedule="@yearly", suspend=True)
        body["spec"]["fault"] = {"podDelete": {"gracePeriodSeconds": 0}}
        chaos.create_experiment(body)
        env = {**os.environ, "KUBECONFIG": str(bench.kubeconfig)}
        exported = Path(tmp) / "kill.json"
        subprocess.run(
            [
                str(REPO / ".venv/bin/aftershock"),
                "export",
                "chaostoolkit",
                "-n",
                namespace,
                "kill",
                "-o",
                str(exported),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        (Path(tmp) / "settings.yaml").write_text("{}\n")
        chaos_cmd = [
            str(REPO / ".venv/bin/chaos"),
            "--settings",
            str(Path(tmp) / "settings.yaml"),
            "--log-file",
            str(Path(tmp) / "chaos.log"),
            "run",
            str(exported),
            "--journal-path",
            str(Path(tmp) / "journal.json"),
        ]
        deletions = Deletions(api, namespace)
        deletions.start()
        try:
            for index in range(args.rounds):
                # aftershock: a ChaosRun, as `aftershock trigger` makes it
                before = settle(api, namespace)
                run_body: dict[str, Any] = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ChaosRun",
                    "metadata": {"name": f"kill-manual-{index}"},
                    "spec": {"experiment": "kill"},
                }
                start = time.monotonic()
                client.CustomObjectsApi(api).create_namespaced_custom_object(
                    GROUP, VERSION, namespace, "chaosruns", run_body
                )
                timings["aftershock"].append(deletions.first_after(start, before))
                wait_for(lambda: all_finished(chaos), timeout=120, message="the run finished")
                # Chaos Toolkit: `chaos run` of the export
                before = settle(api, namespace)
                start = time.monotonic()
                process = subprocess.Popen(
                    chaos_cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                timings["chaos_run"].append(deletions.first_after(start, before))
                if process.wait(timeout=120) != 0:
                    raise SystemExit(f"chaos run failed; see {tmp}/chaos.log")
                # the floor: one DELETE from here
                before = settle(api, namespace)
                victim = sorted(ready_pods(api, namespace, APP), key=lambda p: p.metadata.name)[0]
                start = time.monotonic()
                core.delete_namespaced_pod(victim.metadata.name, namespace, grace_period_seconds=0)
                timings["bare_delete"].append(deletions.first_after(start, before))
                say(
                    f"round {index + 1}/{args.rounds}: aftershock {timings['aftershock'][-1]:.3f} s,"
                    f" chaos run {timings['chaos_run'][-1]:.3f} s, bare delete {timings['bare_delete'][-1]:.3f} s"
                )
        finally:
            deletions.stop()
    stats = {name: summary(values) for name, values in timings.items()}
    floor = stats["bare_delete"]["p50"]
    result = {
        "benchmark": "chaostoolkit-side-by-side",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rounds": args.rounds,
        "seconds_intent_to_first_deleted": stats,
        "p50_over_bare_delete": {
            name: round(float(stats[name]["p50"]) / float(floor), 1) for name in ("aftershock", "chaos_run")
        },
        "samples": timings,
    }
    report(result, args.out)
    print(
        json.dumps(
            {k: result[k] for k in ("seconds_intent_to_first_deleted", "p50_over_bare_delete")}, indent=2
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
