"""Chaos Toolkit, both ways: a ChaosExperiment as a Chaos Toolkit experiment (`export`), the
mappable subset of a Chaos Toolkit experiment as a ChaosExperiment (`import_experiment`), and a
finished ChaosRun as a Chaos Toolkit journal (`journal`). Pure: the CLI reads and writes.

What maps (docs/chaostoolkit.md has the table):
- podDelete ↔ `chaosk8s.pod.actions.terminate_pods` (label selector, namespace, quantity, grace);
- networkPartition (mode all) ↔ `chaosk8s.networking.actions.create_network_policy` of a deny-all
  NetworkPolicy, a pause for fault.duration, and `remove_network_policy` as its rollback;
- toxiproxy ↔ `chaostoxi.toxic.actions.create_toxic` per toxic, a pause, `delete_toxic` rollbacks;
- http probes ↔ `http` probes; prometheus probes ↔ `chaosprometheus.probes.query` of a query that
  counts the samples out of bounds (0 is steady; no data counts as one); kubernetes probes ↔
  `chaosk8s` readiness probes.
What does not is refused with what is missing, never approximated into something that could do
more (or less) than the original: a drain whose rollback cannot name the nodes it drained, a
Litmus experiment, a taint, a partition of some of the pods. Importing never runs anything: a
Python function outside the mapped ones, or a process provider, is refused by name.

What Chaos Toolkit has no field for (the schedule, recovery objective and timeout, the target's
kind, the gate, the analysis, probe intervals) travels in an `aftershock` extension; the
activities win where both say something.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aftershock.api.durations import parse_duration
from aftershock.api.experiment import ChaosExperimentSpec
from aftershock.core.selectors import SelectorError, parse_label_selector, to_label_selector

EXTENSION = "aftershock"
API_VERSION = "aftershock.dev/v1alpha1"
_OUT_OF_BOUNDS = re.compile(
    r"^\(count\(\((?P<query>.*)\) (?P<op><=|>=) (?P<bound>[-+0-9.eE]+)\) or vector\(0\)\)"
    r" \+ on\(\) \(absent\((?P=query)\) or vector\(0\)\)$",
    re.S,
)


class NotMappable(Exception):
    """The experiment (or part of it) has no counterpart on the other side; `missing` says what."""

    def __init__(self, what: str, missing: Sequence[str]) -> None:
        super().__init__(f"{what}: " + "; ".join(missing))
        self.missing = list(missing)


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole == seconds and whole % 60 == 0 and whole:
        return f"{whole // 60}m"
    return f"{whole}s" if whole == seconds else f"{seconds}s"


# --- export --------------------------------------------------------------------------------------


def _python(module: str, func: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "python", "module": module, "func": func, "arguments": dict(arguments)}


def _probe(name: str, provider: Mapping[str, Any], tolerance: Any) -> dict[str, Any]:
    return {"type": "probe", "name": name, "tolerance": tolerance, "provider": dict(provider)}


def _bounds_query(query: str, below: float | None, above: float | None) -> str:
    """PromQL that counts the samples outside the bounds, and no data as one: 0 is steady."""
    op, bound = (">=", below) if below is not None else ("<=", above)
    return f"(count(({query}) {op} {bound!r}) or vector(0)) + on() (absent({query}) or vector(0))"


def _export_probe(
    probe: Mapping[str, Any],
    namespace: str,
    selectors: Mapping[str, str],
    config: dict[str, Any],
    missing: list[str],
) -> dict[str, Any] | None:
    name = str(probe["name"])
    if probe.get("http"):
        http = probe["http"]
        if http.get("bodyContains"):
            missing.append(f"probe {name}: bodyContains (a Chaos Toolkit http probe checks one tolerance)")
            return None
        timeout = _seconds(str(http.get("timeout") or "1s"))
        if http.get("maxLatency"):
            timeout = min(timeout, _seconds(str(http["maxLatency"])))
        statuses = list(http.get("expectStatus") or [200])
        provider = {
            "type": "http",
            "url": http["url"],
            "method": http.get("method") or "GET",
            "timeout": timeout,
        }
        return _probe(name, provider, statuses[0] if len(statuses) == 1 else statuses)
    if probe.get("prometheus"):
        prom = probe["prometheus"]
        if prom.get("below") is not None and prom.get("above") is not None:
            missing.append(f"probe {name}: both below and above (one bound per Chaos Toolkit probe)")
            return None
        base = str(prom["url"]).rstrip("/")
        if config.setdefault("prometheus_base_url", base) != base:
            missing.append(
                f"probe {name}: a second Prometheus server (chaosprometheus reads one per experiment)"
            )
            return None
        query = _bounds_query(str(prom["query"]), prom.get("below"), prom.get("above"))
        arguments = {"query": query, "timeout": _seconds(str(prom.get("timeout") or "2s"))}
        tolerance: dict[str, Any] = {"type": "jsonpath", "path": "$.data.result[0].value[1]", "expect": "0"}
        return _probe(name, _python("chaosprometheus.probes", "query", arguments), tolerance)
    if probe.get("kubernetes"):
        k8s = probe["kubernetes"]
        kind, workload = str(k8s["kind"]), str(k8s["name"])
        if k8s.get("readyAtLeast") is not None:
            selector = selectors.get(f"{kind}/{workload}")
            if selector is None:
                missing.append(
                    f"probe {name}: readyAtLeast needs {kind} {workload}'s pod selector (not found)"
                )
                return None
            arguments = {"label_selector": selector, "phase": "Running", "ns": namespace}
            tolerance = {"type": "range", "range": [int(k8s["readyAtLeast"]), 1_000_000]}
            return _probe(name, _python("chaosk8s.pod.probes", "count_pods", arguments), tolerance)
        funcs = {
            "Deployment": ("chaosk8s.deployment.probes", "deployment_available_and_healthy"),
            "StatefulSet": ("chaosk8s.statefulset.probes", "statefulset_fully_available"),
            "DaemonSet": ("chaosk8s.daemonset.probes", "daemon_set_available_and_healthy"),
        }
        module, func = funcs[kind]
        return _probe(name, _python(module, func, {"name": workload, "ns": namespace}), True)
    missing.append(f"probe {name}: a probe type Chaos Toolkit has no counterpart for")
    return None


def _export_fault(
    spec: Mapping[str, Any], name: str, namespace: str, config: dict[str, Any], missing: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    fault, target = spec["fault"], spec["target"]
    selector = to_label_selector(target.get("selector") or {})
    mode, value = str(target.get("mode") or "one"), target.get("value")
    duration = _seconds(str(fault["duration"])) if fault.get("duration") else 0.0
    if fault.get("podDelete") is not None:
        grace = (fault["podDelete"] or {}).get("gracePeriodSeconds")
        arguments: dict[str, Any] = {"label_selector": selector, "ns": namespace, "rand": True}
        if mode == "all":
            arguments["all"] = True
        else:
            arguments.update(
                mode="percentage" if mode == "percent" else "fixed", qty=1 if mode == "one" else int(value)
            )
        arguments["grace_period"] = -1 if grace is None else int(grace)
        action = {
            "type": "action",
            "name": "delete-target-pods",
            "provider": _python("chaosk8s.pod.actions", "terminate_pods", arguments),
        }
        return [action], []
    if fault.get("networkPartition") is not None:
        if mode != "all":
            missing.append(
                f"networkPartition with mode {mode}: chaosk8s's NetworkPolicy selects every pod with the"
                " target's labels, not some of them (use mode all)"
            )
            return [], []
        direction = str((fault["networkPartition"] or {}).get("direction") or "Both")
        policy_name = f"aftershock-{name}"[:63]
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": policy_name},
            "spec": {
                "podSelector": {k: v for k, v in (target.get("selector") or {}).items() if v},
                "policyTypes": ["Ingress", "Egress"] if direction == "Both" else [direction],
            },
        }
        action = {
            "type": "action",
            "name": "partition-target-pods",
            "provider": _python(
                "chaosk8s.networking.actions", "create_network_policy", {"spec": policy, "ns": namespace}
            ),
            "pauses": {"after": duration},
        }
        rollback = {
            "type": "action",
            "name": "remove-partition",
            "provider": _python(
                "chaosk8s.networking.actions", "remove_network_policy", {"name": policy_name, "ns": namespace}
            ),
        }
        return [action], [rollback]
    if fault.get("toxiproxy") is not None:
        toxiproxy = fault["toxiproxy"]
        endpoint = urlsplit(str(toxiproxy["endpoint"]))
        if endpoint.scheme != "http":
            missing.append("toxiproxy over https (chaostoolkit-toxiproxy speaks http)")
            return [], []
        config["toxiproxy_host"] = endpoint.hostname
        config["toxiproxy_port"] = endpoint.port or 8474
        actions, rollbacks = [], []
        for index, toxic in enumerate(toxiproxy.get("toxics") or []):
            toxic_name = f"aftershock.{name}.{index}"
            arguments = {
                "for_proxy": toxiproxy["proxy"],
                "toxic_name": toxic_name,
                "toxic_type": toxic["type"],
                "stream": toxic.get("stream") or "downstream",
                "toxicity": float(toxic.get("toxicity", 1.0)),
                "attributes": dict(toxic.get("attributes") or {}),
            }
            actions.append(
                {
                    "type": "action",
                    "name": f"add-{toxic_name}",
                    "provider": _python("chaostoxi.toxic.actions", "create_toxic", arguments),
                }
            )
            rollbacks.append(
                {
                    "type": "action",
                    "name": f"remove-{toxic_name}",
                    "provider": _python(
                        "chaostoxi.toxic.actions",
                        "delete_toxic",
                        {"for_proxy": toxiproxy["proxy"], "toxic_name": toxic_name},
                    ),
                }
            )
        if actions:
            actions[-1]["pauses"] = {"after": duration}
        return actions, rollbacks
    kind = next((k for k in fault if k != "duration"), "unknown")
    reasons = {
        "nodeDrain": "nodeDrain: chaosk8s's drain_nodes picks the nodes itself and its rollback"
        " (uncordon_node) cannot name them, so an exported drain could leave nodes cordoned",
        "nodeTaint": "nodeTaint: chaosk8s has no action that taints a node",
        "litmus": "litmus: a LitmusChaos experiment has no Chaos Toolkit counterpart",
    }
    missing.append(reasons.get(kind, f"{kind}: no Chaos Toolkit counterpart"))
    return [], []


def export(experiment: Mapping[str, Any], *, selectors: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Chaos Toolkit experiment doing what `experiment` (a ChaosExperiment as JSON) does.
    `selectors`: "Kind/name" → pod label selector, for kubernetes probes with readyAtLeast.
    Raises NotMappable listing everything that has no counterpart."""
    meta = experiment.get("metadata") or {}
    # with the schema's defaults filled in, as the API server holds it
    spec = ChaosExperimentSpec.model_validate(experiment.get("spec") or {}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    name, namespace = str(meta.get("name")), str(meta.get("namespace") or "default")
    target_ns = str((spec.get("target") or {}).get("namespace") or namespace)
    config: dict[str, Any] = {}
    missing: list[str] = []
    method, rollbacks = _export_fault(spec, name, target_ns, config, missing)
    probes = []
    for probe in (spec.get("steadyState") or {}).get("probes") or []:
        exported = _export_probe(probe, target_ns, selectors or {}, config, missing)
        if exported is not None:
            probes.append(exported)
    if missing:
        raise NotMappable(f"ChaosExperiment {namespace}/{name} cannot be exported to Chaos Toolkit", missing)
    carried = {
        k: copy.deepcopy(v) for k, v in spec.items() if k not in ("fault", "steadyState") and v is not None
    }
    if spec.get("steadyState"):
        carried["steadyState"] = {
            "interval": spec["steadyState"].get("interval"),
            "abortAfter": {
                p["name"]: p["abortAfter"] for p in spec["steadyState"]["probes"] if p.get("abortAfter")
            },
            "kubernetes": {
                p["name"]: p["kubernetes"] for p in spec["steadyState"]["probes"] if p.get("kubernetes")
            },
            "http": {p["name"]: p["http"] for p in spec["steadyState"]["probes"] if p.get("http")},
        }
    carried["fault"] = {"duration": spec["fault"].get("duration")} if spec["fault"].get("duration") else {}
    out: dict[str, Any] = {
        "version": "1.0.0",
        "title": f"aftershock {namespace}/{name}",
        "description": f"Exported from ChaosExperiment {namespace}/{name}. Its schedule, recovery objective,"
        " gate and analysis are aftershock's and are kept in the aftershock extension; Chaos Toolkit does"
        " not act on them.",
        "tags": ["aftershock", next(k for k in spec["fault"] if k != "duration")],
        "configuration": config,
        "extensions": [{"name": EXTENSION, "namespace": namespace, "experiment": name, "spec": carried}],
        "method": method,
        "rollbacks": rollbacks,
    }
    if probes:
        out["steady-state-hypothesis"] = {"title": f"{name} is steady", "probes": probes}
    if not out["configuration"]:
        del out["configuration"]
    return out


# --- import --------------------------------------------------------------------------------------


def _selector(text: str) -> dict[str, Any]:
    """A label selector string as a LabelSelector, equalities as matchLabels."""
    requirements = parse_label_selector(text).get("matchExpressions") or []
    labels, expressions = {}, []
    for r in requirements:
        if r["operator"] == "In" and len(r.get("values") or []) == 1:
            labels[r["key"]] = r["values"][0]
        else:
            expressions.append(r)
    out: dict[str, Any] = {}
    if labels:
        out["matchLabels"] = labels
    if expressions:
        out["matchExpressions"] = expressions
    return out


def _label(activity: Mapping[str, Any]) -> str:
    provider = activity.get("provider") or {}
    where = (
        f"{provider.get('module')}.{provider.get('func')}"
        if provider.get("type") == "python"
        else str(provider.get("type"))
    )
    return f"{activity.get('type', 'activity')} {activity.get('name', '?')!r} ({where})"


def _func(activity: Mapping[str, Any]) -> str:
    provider = activity.get("provider") or {}
    return f"{provider.get('module')}.{provider.get('func')}" if provider.get("type") == "python" else ""


def _import_probe(
    activity: Mapping[str, Any], carried: Mapping[str, Any], config: Mapping[str, Any], refused: list[str]
) -> dict[str, Any] | None:
    name = str(activity.get("name"))
    provider = activity.get("provider") or {}
    args = provider.get("arguments") or {}
    tolerance = activity.get("tolerance")
    probe: dict[str, Any] = {"name": name}
    original: Any
    if provider.get("type") == "http":
        original = dict((carried.get("http") or {}).get(name) or {})
        statuses = tolerance if isinstance(tolerance, list) else [tolerance]
        if not all(isinstance(s, int) for s in statuses):
            refused.append(f"{_label(activity)}: a tolerance other than status codes")
            return None
        http = {
            **original,
            "url": provider.get("url"),
            "method": provider.get("method") or "GET",
            "expectStatus": statuses,
        }
        if "timeout" not in original and provider.get("timeout"):
            http["timeout"] = _duration(float(provider["timeout"]))
        probe["http"] = http
    elif _func(activity) == "chaosprometheus.probes.query":
        match = _OUT_OF_BOUNDS.match(str(args.get("query") or ""))
        if match is None or tolerance != {
            "type": "jsonpath",
            "path": "$.data.result[0].value[1]",
            "expect": "0",
        }:
            refused.append(
                f"{_label(activity)}: a Prometheus query aftershock did not write (bounds unknown)"
            )
            return None
        bound = float(match["bound"])
        prom: dict[str, Any] = {"url": config.get("prometheus_base_url"), "query": match["query"]}
        prom["below" if match["op"] == ">=" else "above"] = int(bound) if bound.is_integer() else bound
        if args.get("timeout"):
            prom["timeout"] = _duration(float(args["timeout"]))
        probe["prometheus"] = prom
    elif _func(activity).startswith(
        (
            "chaosk8s.deployment.probes.",
            "chaosk8s.statefulset.probes.",
            "chaosk8s.daemonset.probes.",
            "chaosk8s.pod.probes.count_pods",
        )
    ):
        original = (carried.get("kubernetes") or {}).get(name)
        if original is None and _func(activity).endswith("count_pods"):
            refused.append(f"{_label(activity)}: counts pods by label; which workload it means is not said")
            return None
        kinds = {"deployment": "Deployment", "statefulset": "StatefulSet", "daemonset": "DaemonSet"}
        kind = kinds.get(str(provider.get("module")).split(".")[1], "Deployment")
        probe["kubernetes"] = (
            dict(original) if original else {"kind": kind, "name": args.get("name"), "available": True}
        )
        if _func(activity).endswith("count_pods") and isinstance(tolerance, Mapping):
            probe["kubernetes"]["readyAtLeast"] = int(tolerance["range"][0])
    else:
        refused.append(
            f"{_label(activity)}: not a probe aftershock can run (it would run code in the operator)"
        )
        return None
    abort = (carried.get("abortAfter") or {}).get(name)
    if abort:
        probe["abortAfter"] = abort
    return probe


def import_experiment(
    ctk: Mapping[str, Any], *, name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """The ChaosExperiment a Chaos Toolkit experiment describes, for the subset that maps; nothing
    in it is run. Raises NotMappable naming every activity that does not map."""
    ext: Mapping[str, Any] = next((e for e in ctk.get("extensions") or [] if e.get("name") == EXTENSION), {})
    carried: dict[str, Any] = copy.deepcopy(ext.get("spec") or {})
    config = ctk.get("configuration") or {}
    refused: list[str] = []
    spec: dict[str, Any] = {k: v for k, v in carried.items() if k not in ("steadyState", "fault")}
    fault: dict[str, Any] = dict(carried.get("fault") or {})
    target: dict[str, Any] = dict(spec.get("target") or {})
    faults = 0
    pause = 0.0
    method = list(ctk.get("method") or [])
    for activity in method:
        func, args = _func(activity), (activity.get("provider") or {}).get("arguments") or {}
        pause += float((activity.get("pauses") or {}).get("after") or 0)
        try:
            if func == "chaosk8s.pod.actions.terminate_pods":
                faults += 1
                target["selector"] = _selector(str(args.get("label_selector") or ""))
                target["namespace"] = args.get("ns") or "default"
                if args.get("all"):
                    target["mode"], _ = "all", target.pop("value", None)
                elif args.get("mode") == "percentage":
                    target["mode"], target["value"] = "percent", int(args.get("qty") or 1)
                elif int(args.get("qty") or 1) == 1:
                    target["mode"], _ = "one", target.pop("value", None)
                else:
                    target["mode"], target["value"] = "fixed", int(args["qty"])
                grace = int(args.get("grace_period", -1))
                fault["podDelete"] = {"gracePeriodSeconds": grace} if grace >= 0 else {}
            elif func == "chaosk8s.networking.actions.create_network_policy":
                policy = args.get("spec") or {}
                body = policy.get("spec") or {}
                if body.get("ingress") or body.get("egress"):
                    raise ValueError("allows some traffic: not a partition")
                faults += 1
                types = sorted(body.get("policyTypes") or ["Ingress"])
                target["selector"] = dict(body.get("podSelector") or {})
                target["namespace"] = args.get("ns") or "default"
                target["mode"], _ = "all", target.pop("value", None)
                fault["networkPartition"] = {
                    "direction": "Both" if types == ["Egress", "Ingress"] else types[0]
                }
            elif func == "chaostoxi.toxic.actions.create_toxic":
                if not target.get("selector"):
                    raise ValueError("a toxic has no target workload (an aftershock extension names it)")
                toxiproxy = fault.setdefault(
                    "toxiproxy",
                    {
                        "endpoint": f"http://{config.get('toxiproxy_host')}:{config.get('toxiproxy_port') or 8474}",
                        "proxy": args["for_proxy"],
                        "toxics": [],
                    },
                )
                if faults == 0:
                    faults = 1
                toxic: dict[str, Any] = {
                    "type": args["toxic_type"],
                    "stream": args.get("stream") or "downstream",
                }
                toxic["toxicity"] = args.get("toxicity", 1.0)
                if toxic["toxicity"] == 1.0:
                    toxic["toxicity"] = 1
                if args.get("attributes"):
                    toxic["attributes"] = dict(args["attributes"])
                toxiproxy["toxics"].append(toxic)
            else:
                refused.append(f"{_label(activity)}: no aftershock fault does this (and it is never run)")
        except (KeyError, ValueError, TypeError, SelectorError) as exc:
            refused.append(f"{_label(activity)}: {exc}")
    if faults != 1 and not refused:
        refused.append(f"the method holds {faults} faults; a ChaosExperiment has exactly one")
    for activity in ctk.get("rollbacks") or []:
        if _func(activity) not in (
            "chaosk8s.networking.actions.remove_network_policy",
            "chaostoxi.toxic.actions.delete_toxic",
        ):
            refused.append(
                f"rollback {_label(activity)}: aftershock reverts its faults itself and runs nothing else"
            )
    probes = []
    carried_state = carried.get("steadyState") or {}
    for activity in (ctk.get("steady-state-hypothesis") or {}).get("probes") or []:
        probe = _import_probe(activity, carried_state, config, refused)
        if probe is not None:
            probes.append(probe)
    if refused:
        raise NotMappable("this Chaos Toolkit experiment cannot be imported", refused)
    if pause and ("networkPartition" in fault or "toxiproxy" in fault):
        fault["duration"] = _duration(pause)
    target.setdefault("kind", "Deployment")  # Chaos Toolkit selects pods by label only: the usual owner
    home = namespace or ext.get("namespace")
    if "namespace" not in (carried.get("target") or {}) and target.get("namespace") == home and ext:
        del target["namespace"]  # it was the experiment's own namespace, left out
    spec["target"] = target
    spec["fault"] = fault
    if probes:
        state: dict[str, Any] = {"probes": probes}
        if carried_state.get("interval"):
            state = {"interval": carried_state["interval"], **state}
        spec["steadyState"] = state
    meta: dict[str, Any] = {
        "name": name or ext.get("experiment") or _slug(str(ctk.get("title") or "imported"))
    }
    if namespace or ext.get("namespace"):
        meta["namespace"] = namespace or ext.get("namespace")
    return {"apiVersion": API_VERSION, "kind": "ChaosExperiment", "metadata": meta, "spec": spec}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:52] or "imported"


# --- journal -------------------------------------------------------------------------------------

STATUS = {"Completed": "completed", "Aborted": "aborted", "Errored": "failed", "Skipped": "interrupted"}


def _stamp(value: Any) -> str | None:
    return str(value).replace("Z", "+00:00") if value else None


def _between(start: str | None, end: str | None) -> float:
    import datetime as dt

    if not start or not end:
        return 0.0
    return max(0.0, (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds())


def fallback_experiment(run: Mapping[str, Any], missing: Sequence[str]) -> dict[str, Any]:
    """What a journal names as its experiment when the run's spec has no Chaos Toolkit form."""
    spec = run.get("spec") or {}
    kind = next((k for k in spec.get("fault") or {} if k != "duration"), "unknown")
    return {
        "version": "1.0.0",
        "title": f"aftershock {run['metadata'].get('namespace')}/{spec.get('experiment')}",
        "description": "Not exportable to Chaos Toolkit (" + "; ".join(missing) + "): the method names the"
        " aftershock fault that ran.",
        "tags": ["aftershock", kind],
        "method": [
            {"type": "action", "name": f"aftershock-{kind}", "provider": _python("aftershock", kind, {})}
        ],
    }


def journal(run: Mapping[str, Any], experiment: Mapping[str, Any], *, version: str) -> dict[str, Any]:
    """A Chaos Toolkit journal (what `chaos run` writes) of a finished ChaosRun; `experiment` is
    its Chaos Toolkit form (export, or fallback_experiment)."""
    meta, status = run.get("metadata") or {}, run.get("status") or {}
    phase = str(status.get("phase") or "")
    start = _stamp(status.get("startTime") or meta.get("creationTimestamp"))
    end = _stamp(status.get("completionTime"))
    by_name = {p["name"]: p for p in (experiment.get("steady-state-hypothesis") or {}).get("probes") or []}

    def state(when: str) -> dict[str, Any] | None:
        records = status.get("probes") or []
        judged = [p for p in records if p.get(when)]
        if not judged:
            return None
        moment = start if when == "before" else end
        probes = [
            {
                "activity": by_name.get(p["name"], {"type": "probe", "name": p["name"]}),
                "output": p.get("lastAnswer"),
                "status": "succeeded",
                "start": moment,
                "end": moment,
                "duration": 0.0,
                "tolerance_met": p[when] == "Held",
            }
            for p in judged
        ]
        return {"steady_state_met": all(p["tolerance_met"] for p in probes), "probes": probes}

    injected = sorted(str(t["injectedAt"]) for t in status.get("targets") or [] if t.get("injectedAt"))
    runs = []
    actions = experiment.get("method") or []
    if injected and actions:
        began = _stamp(injected[0])
        finished = _stamp(status.get("revertedAt")) or began
        runs.append(
            {
                "activity": actions[0],
                "output": {
                    "targets": status.get("targets") or [],
                    "displaced": status.get("displaced") or [],
                },
                "status": "succeeded",
                "start": began,
                "end": finished,
                "duration": _between(began, finished),
            }
        )
    rollbacks = []
    if status.get("revertedAt"):
        reverted = _stamp(status["revertedAt"])
        activity = next(
            iter(experiment.get("rollbacks") or []), {"type": "action", "name": "aftershock-revert"}
        )
        rollbacks.append(
            {
                "activity": activity,
                "output": None,
                "status": "succeeded",
                "start": reverted,
                "end": reverted,
                "duration": 0.0,
            }
        )
    deviated = phase == "Completed" and status.get("verdict") == "Failed"
    return {
        "chaoslib-version": f"aftershock {version}",
        "platform": "aftershock operator",
        "node": str(status.get("claimedBy") or ""),
        "experiment": dict(experiment),
        "start": start,
        "end": end,
        "duration": _between(start, end),
        "status": STATUS.get(phase, "interrupted"),
        "deviated": deviated,
        "steady_states": {"before": state("before"), "after": state("after"), "during": []},
        "run": runs,
        "rollbacks": rollbacks,
        "aftershock": {
            "run": f"{meta.get('namespace')}/{meta.get('name')}",
            "phase": phase,
            "reason": status.get("reason"),
            "message": status.get("message"),
            "verdict": status.get("verdict"),
            "severity": status.get("severity"),
            "recoverySeconds": status.get("recoverySeconds"),
            "findings": status.get("findings") or [],
        },
    }
