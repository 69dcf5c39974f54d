"""Benchmark: how soon after its slot a scheduled Toxiproxy fault is in place.

One experiment `@every <interval>` adds a latency toxic to a proxy of a real Toxiproxy (the pinned
build, a local process) for 1 s; this script polls the Toxiproxy API every 10 ms and stamps the
moment each run's toxic first appears. Latency = that moment minus the run's slot (the unix seconds in
its name, which is `spec.scheduledTime`). The operator runs as a separate process.

    .venv/bin/python -m benchmarks.toxiproxy_latency [--slots 20] [--interval 3s]

Needs the local cluster (make cluster-up) or KUBECONFIG pointing at one, and the CRDs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from tests.support.chaos import Chaos, experiment
from tests.support.tools import REPO
from tests.support.toxiproxy import toxiproxy
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

from benchmarks.common import bench_environment, machine, percentile, report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--interval", default="3s")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "toxiproxy-latency.json"
    )
    args = parser.parse_args()

    first_seen: dict[str, float] = {}  # run uid → wall-clock seconds the toxic was first listed
    stop = threading.Event()
    with bench_environment("bench-toxi") as bench, toxiproxy() as tp:
        api, namespace = bench.api, bench.namespace
        client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("client", replicas=1))
        wait_for(lambda: len(ready_pods(api, namespace, "client")) == 1, timeout=60, message="steady state")

        def poll() -> None:
            while not stop.is_set():
                moment = time.time()
                for name in tp.names():
                    uid = name.split(".")[2] if name.count(".") == 3 else None
                    if uid:
                        first_seen.setdefault(uid, moment)
                time.sleep(0.01)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        body = experiment(
            "slow",
            app="client",
            objective="10s",
            timeout="30s",
            fault={
                "duration": "1s",
                "toxiproxy": {
                    "endpoint": tp.url,
                    "proxy": tp.proxy,
                    "toxics": [{"type": "latency", "attributes": {"latency": 100}}],
                },
            },
        )
        body["spec"].update(schedule=f"@every {args.interval}", successfulRunsHistoryLimit=100)
        chaos = Chaos(api, namespace)
        chaos.create_experiment(body)

        def enough() -> bool:
            return sum(1 for r in chaos.runs("slow") if r["metadata"]["uid"] in first_seen) >= args.slots

        wait_for(enough, timeout=args.slots * 10 + 60, message=f"{args.slots} slots with their toxic")
        stop.set()
        runs = chaos.runs("slow")
        chaos.objects.patch_namespaced_custom_object(
            "aftershock.dev", "v1alpha1", namespace, "chaosexperiments", "slow", {"spec": {"suspend": True}}
        )
    latencies = sorted(
        first_seen[r["metadata"]["uid"]] - int(r["metadata"]["name"].rsplit("-", 1)[1])
        for r in runs
        if r["metadata"]["uid"] in first_seen
    )[: args.slots]
    result: dict[str, Any] = {
        "benchmark": "toxiproxy fault latency",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "slots": len(latencies),
        "interval": args.interval,
        "machine": machine(),
        "slot_to_toxic_seconds": {
            "median": round(statistics.median(latencies), 3),
            "p95": round(percentile(latencies, 95), 3),
            "max": round(max(latencies), 3),
        },
        "target_median_seconds": 0.5,
    }
    report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
