"""Benchmark: how quickly aftershock acts, and how quickly it notices recovery.

Over N pod-delete runs on the local cluster (operator as a separate process), measures
  (a) experiment created → first target pod deleted   (reaction latency)
  (b) replacement pod Ready → recovery recorded in the run's status   (detection lag)
from watch events taken by this script, not from the operator's own numbers.

    .venv/bin/python -m benchmarks.pod_delete_latency [--runs 20] [--out benchmarks/results/pod-delete-latency.json]

Needs the local cluster (make cluster-up) or KUBECONFIG pointing at one, and the CRDs.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from tests.support.chaos import GROUP, VERSION, Chaos, experiment
from tests.support.tools import REPO
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

from benchmarks.common import bench_environment, machine, percentile, report


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Recorder:
    """Watches pods and runs in one namespace, stamping each interesting event on arrival."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.pod_deleted: dict[str, dt.datetime] = {}
        self.pod_ready: dict[str, dt.datetime] = {}
        self.run_completed: dict[str, dt.datetime] = {}
        self._watches: list[watch.Watch] = []

    def _pods(self) -> None:
        core = client.CoreV1Api(self.api)
        w = watch.Watch()
        self._watches.append(w)
        for event in w.stream(core.list_namespaced_pod, self.namespace, timeout_seconds=3600):
            pod, seen = event["object"], _now()
            if event["type"] == "DELETED":
                self.pod_deleted.setdefault(pod.metadata.uid, seen)
            elif any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                self.pod_ready.setdefault(pod.metadata.uid, seen)

    def _runs(self) -> None:
        objects = client.CustomObjectsApi(self.api)
        w = watch.Watch()
        self._watches.append(w)
        for event in w.stream(
            objects.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "chaosruns",
            timeout_seconds=3600,
        ):
            obj, seen = event["object"], _now()
            if (obj.get("status") or {}).get("phase") == "Completed":
                self.run_completed.setdefault(obj["metadata"]["name"], seen)

    @staticmethod
    def _quietly(target: Any) -> None:
        # a watch closed by stop() ends with a protocol error; nothing to report
        with contextlib.suppress(Exception):
            target()

    def start(self) -> None:
        for target in (self._pods, self._runs):
            threading.Thread(target=self._quietly, args=(target,), daemon=True).start()
        time.sleep(0.5)  # let both watches establish before the first experiment (benchmark only)

    def stop(self) -> None:
        for w in self._watches:
            w.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "pod-delete-latency.json"
    )
    args = parser.parse_args()

    reaction: list[float] = []
    detection: list[float] = []
    with bench_environment("bench") as bench:
        api, namespace = bench.api, bench.namespace
        client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("target", replicas=3))
        chaos = Chaos(api, namespace)
        recorder = Recorder(api, namespace)
        recorder.start()
        for i in range(args.runs):
            wait_for(
                lambda: len(ready_pods(api, namespace, "target")) == 3, timeout=60, message="steady state"
            )
            name = f"bench-{i}"
            created_at = _now()
            chaos.create_experiment(experiment(name, app="target", objective="10s", timeout="60s"))
            run = wait_for(lambda n=name: chaos.finished_run(n), timeout=90, message=f"run of {name}")
            wait_for(
                lambda r=run: r["metadata"]["name"] in recorder.run_completed, timeout=10, message="watch"
            )
            status = run["status"]
            victim = status["targets"][0]["uid"]
            deleted_at = recorder.pod_deleted[victim]
            replacement_ready = max(
                t for uid, t in recorder.pod_ready.items() if t > deleted_at and uid != victim
            )
            reaction.append((deleted_at - created_at).total_seconds())
            detection.append(
                (recorder.run_completed[run["metadata"]["name"]] - replacement_ready).total_seconds()
            )
            print(
                f"run {i + 1:2d}/{args.runs}: reaction {reaction[-1]:.3f}s, detection lag {detection[-1]:.3f}s"
            )
            chaos.delete("chaosexperiments", name)
        recorder.stop()

    result: dict[str, Any] = {
        "benchmark": "pod-delete latency",
        "date": _now().strftime("%Y-%m-%d"),
        "runs": args.runs,
        "machine": machine(),
        "reaction_seconds": {
            "median": round(statistics.median(reaction), 3),
            "p95": round(percentile(reaction, 95), 3),
            "max": round(max(reaction), 3),
        },
        "detection_lag_seconds": {
            "median": round(statistics.median(detection), 3),
            "p95": round(percentile(detection, 95), 3),
            "max": round(max(detection), 3),
        },
    }
    report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
