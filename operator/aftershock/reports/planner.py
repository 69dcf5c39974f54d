"""The next chaos scenarios for a namespace: ChaosExperiment manifests that cover its failure-mode
matrix (pure: the CLI discovers the workloads and has each manifest judged by a server-side dry
run).

What is proposed, per workload the namespace runs:
- `podDelete` of one pod — every Deployment and StatefulSet (restart safety);
- `networkPartition` of one pod for 30 s — every workload a Service sends traffic to (how its
  clients cope with a backend that stops answering);
- `nodeDrain` of one node for 2 min — workloads whose Ready replicas span more than one node (a
  workload on one node would only be taken down: the recovery design says so instead);
- Toxiproxy latency and connection resets on every proxy the namespace's experiments already name
  (dependency faults need a proxy in the path; aftershock does not put one there).
A scenario an existing experiment already covers (same target selector and fault kind, or the same
proxy and toxic type) is not proposed again. Names are deterministic: `<workload>-<fault>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aftershock.core.naming import label_value
from aftershock.core.selectors import matches

API_VERSION = "aftershock.dev/v1alpha1"
MAX_NAME = 52


@dataclass(frozen=True)
class WorkloadInfo:
    kind: str  # Deployment, StatefulSet or DaemonSet
    name: str
    selector: Mapping[str, Any]  # spec.selector (a LabelSelector)
    pod_labels: Mapping[str, str]
    replicas: int
    nodes: frozenset[str] = frozenset()  # where its Ready pods run


@dataclass(frozen=True)
class Scenario:
    manifest: dict[str, Any]
    why: str
    covers: str  # the matrix cell: "Deployment ns/name / podDelete"


@dataclass
class Existing:
    """What the namespace's experiments already cover."""

    cells: set[tuple[str, str]] = field(default_factory=set)  # (selector json, fault kind)
    proxies: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (endpoint, proxy) → toxic types

    @classmethod
    def of(cls, experiments: Sequence[Mapping[str, Any]]) -> Existing:
        found = cls()
        for exp in experiments:
            spec = exp.get("spec") or {}
            fault = spec.get("fault") or {}
            selector = _key((spec.get("target") or {}).get("selector") or {})
            for kind in fault:
                if kind != "duration":
                    found.cells.add((selector, kind))
            toxiproxy = fault.get("toxiproxy")
            if toxiproxy:
                types = found.proxies.setdefault(
                    (str(toxiproxy.get("endpoint")), str(toxiproxy.get("proxy"))), set()
                )
                types.update(str(t.get("type")) for t in toxiproxy.get("toxics") or [])
        return found


def _key(selector: Mapping[str, Any]) -> str:
    import json

    return json.dumps(selector, sort_keys=True)


def _name(*parts: str) -> str:
    text = "-".join(parts).lower()
    return text[:MAX_NAME].rstrip("-")


def _experiment(
    name: str, workload: WorkloadInfo, fault: dict[str, Any], recovery: dict[str, str], why: str
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ChaosExperiment",
        "metadata": {
            "name": name,
            "labels": {"aftershock.dev/proposed-by": "aftershock-plan"},
            "annotations": {"aftershock.dev/why": why},
        },
        "spec": {
            "target": {"kind": workload.kind, "selector": dict(workload.selector), "mode": "one"},
            "fault": fault,
            "recovery": recovery,
        },
    }


def propose(
    workloads: Sequence[WorkloadInfo],
    services: Sequence[Mapping[str, Any]],
    experiments: Sequence[Mapping[str, Any]],
) -> list[Scenario]:
    """The scenarios that would complete the namespace's matrix, in a stable order."""
    existing = Existing.of(experiments)
    out: list[Scenario] = []
    for w in sorted(workloads, key=lambda w: (w.kind, w.name)):
        selector = _key(w.selector)
        label = f"{w.kind} {w.name}"
        if w.kind in ("Deployment", "StatefulSet") and (selector, "podDelete") not in existing.cells:
            why = f"restart safety of {label}: does it replace a lost pod within the objective?"
            out.append(
                Scenario(
                    _experiment(
                        _name(w.name, "pod-delete"),
                        w,
                        {"podDelete": {}},
                        {"objective": "30s", "timeout": "5m"},
                        why,
                    ),
                    why,
                    f"{label} / podDelete",
                )
            )
        served_by = [
            str(s["metadata"]["name"])
            for s in services
            if (s.get("spec") or {}).get("selector")
            and matches({"matchLabels": s["spec"]["selector"]}, w.pod_labels)
        ]
        if served_by and (selector, "networkPartition") not in existing.cells:
            why = f"clients of Service {', '.join(served_by)} when one backend of {label} stops answering"
            out.append(
                Scenario(
                    _experiment(
                        _name(w.name, "partition"),
                        w,
                        {"duration": "30s", "networkPartition": {"direction": "Both"}},
                        {"objective": "30s", "timeout": "5m"},
                        why,
                    ),
                    why,
                    f"{label} / networkPartition",
                )
            )
        if len(w.nodes) > 1 and w.kind != "DaemonSet" and (selector, "nodeDrain") not in existing.cells:
            why = f"losing one of the {len(w.nodes)} nodes {label} runs on (needs nodeDrain in the policy)"
            out.append(
                Scenario(
                    _experiment(
                        _name(w.name, "node-drain"),
                        w,
                        {"duration": "2m", "nodeDrain": {"gracePeriodSeconds": 30}},
                        {"objective": "1m", "timeout": "5m"},
                        why,
                    ),
                    why,
                    f"{label} / nodeDrain",
                )
            )
    for (endpoint, proxy), types in sorted(existing.proxies.items()):
        template = next(
            e
            for e in experiments
            if ((e.get("spec") or {}).get("fault") or {}).get("toxiproxy", {}).get("proxy") == proxy
            and ((e.get("spec") or {}).get("fault") or {}).get("toxiproxy", {}).get("endpoint") == endpoint
        )
        target = dict((template.get("spec") or {}).get("target") or {})
        for toxic, attributes in (
            ("latency", {"latency": 1000, "jitter": 200}),
            ("reset_peer", {"timeout": 0}),
        ):
            if toxic in types:
                continue
            why = f"dependency {proxy} {'slow (1 s latency)' if toxic == 'latency' else 'resetting connections'}"
            manifest = {
                "apiVersion": API_VERSION,
                "kind": "ChaosExperiment",
                "metadata": {
                    "name": _name(label_value(proxy), toxic.replace("_", "-")),
                    "labels": {"aftershock.dev/proposed-by": "aftershock-plan"},
                    "annotations": {"aftershock.dev/why": why},
                },
                "spec": {
                    "target": target,
                    "fault": {
                        "duration": "1m",
                        "toxiproxy": {
                            "endpoint": endpoint,
                            "proxy": proxy,
                            "toxics": [{"type": toxic, "attributes": attributes}],
                        },
                    },
                    "recovery": {"objective": "30s", "timeout": "5m"},
                },
            }
            out.append(Scenario(manifest, why, f"dependency {proxy} / toxiproxy {toxic}"))
    return out
