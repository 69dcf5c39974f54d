"""Chaos Toolkit export, import and journals (pure), checked with chaostoolkit-lib's own validator."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.experiment import ensure_experiment_is_valid

from aftershock.api.experiment import ChaosExperimentSpec
from aftershock.reports import chaostoolkit as ctk

Body = dict[str, Any]


def experiment(
    fault: Body, *, mode: str = "one", value: int | None = None, probes: list[Body] | None = None
) -> Body:
    target: Body = {
        "kind": "Deployment",
        "selector": {"matchLabels": {"app": "checkout"}},
        "mode": mode,
        "namespace": "shop",
    }
    if value is not None:
        target["value"] = value
    spec: Body = {
        "schedule": "*/30 9-17 * * 1-5",
        "target": target,
        "fault": fault,
        "recovery": {"objective": "30s", "timeout": "5m"},
    }
    if probes:
        spec["steadyState"] = {"interval": "2s", "probes": probes}
    return {
        "apiVersion": "aftershock.dev/v1alpha1",
        "kind": "ChaosExperiment",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": spec,
    }


PROBES = [
    {
        "name": "health",
        "http": {"url": "http://checkout.shop.svc:8080/healthz", "expectStatus": [200, 204], "timeout": "1s"},
        "abortAfter": 3,
    },
    {
        "name": "errors",
        "prometheus": {
            "url": "http://prometheus.monitoring.svc:9090",
            "query": 'sum(rate(http_requests_total{code=~"5.."}[1m]))',
            "below": 0.5,
        },
    },
    {"name": "replicas", "kubernetes": {"kind": "Deployment", "name": "checkout", "readyAtLeast": 2}},
    {"name": "available", "kubernetes": {"kind": "Deployment", "name": "checkout", "available": True}},
]
SELECTORS = {"Deployment/checkout": "app=checkout"}
MAPPABLE = {
    "pod delete, one": experiment({"podDelete": {"gracePeriodSeconds": 0}}, probes=PROBES),
    "pod delete, fixed": experiment({"podDelete": {}}, mode="fixed", value=2),
    "pod delete, percent": experiment({"podDelete": {"gracePeriodSeconds": 5}}, mode="percent", value=50),
    "pod delete, all": experiment({"podDelete": {}}, mode="all"),
    "partition": experiment({"duration": "1m", "networkPartition": {"direction": "Ingress"}}, mode="all"),
    "toxiproxy": experiment(
        {
            "duration": "45s",
            "toxiproxy": {
                "endpoint": "http://toxiproxy.shop.svc:8474",
                "proxy": "redis",
                "toxics": [
                    {
                        "type": "latency",
                        "stream": "downstream",
                        "toxicity": 1,
                        "attributes": {"latency": 300},
                    },
                    {
                        "type": "reset_peer",
                        "stream": "upstream",
                        "toxicity": 0.5,
                        "attributes": {"timeout": 0},
                    },
                ],
            },
        },
        probes=PROBES[:2],
    ),
}


def normal(body: Body) -> Body:
    """A spec as the API server would hold it (defaults filled), to compare meaning, not spelling."""
    return ChaosExperimentSpec.model_validate(body["spec"]).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


@pytest.mark.parametrize("body", list(MAPPABLE.values()), ids=list(MAPPABLE))
def test_export_is_a_valid_chaos_toolkit_experiment_and_imports_back_the_same(body: Body) -> None:
    exported = ctk.export(body, selectors=SELECTORS)
    ensure_experiment_is_valid(copy.deepcopy(exported))  # chaostoolkit-lib's own check, modules imported
    back = ctk.import_experiment(exported)
    assert back["metadata"] == {"name": "checkout", "namespace": "shop"}
    assert normal(back) == normal(body)


def test_pod_delete_maps_onto_terminate_pods() -> None:
    [action] = ctk.export(MAPPABLE["pod delete, percent"])["method"]
    provider = action["provider"]
    assert (provider["module"], provider["func"]) == ("chaosk8s.pod.actions", "terminate_pods")
    assert provider["arguments"] == {
        "label_selector": "app=checkout",
        "ns": "shop",
        "rand": True,
        "mode": "percentage",
        "qty": 50,
        "grace_period": 5,
    }


def test_sustained_faults_pause_and_roll_back() -> None:
    exported = ctk.export(MAPPABLE["partition"])
    [action] = exported["method"]
    assert action["pauses"] == {"after": 60.0}
    assert action["provider"]["arguments"]["spec"]["spec"] == {
        "podSelector": {"matchLabels": {"app": "checkout"}},
        "policyTypes": ["Ingress"],
    }
    assert [r["provider"]["func"] for r in exported["rollbacks"]] == ["remove_network_policy"]
    toxics = ctk.export(MAPPABLE["toxiproxy"])
    assert toxics["configuration"]["toxiproxy_host"] == "toxiproxy.shop.svc"
    assert [r["provider"]["arguments"]["toxic_name"] for r in toxics["rollbacks"]] == [
        "aftershock.checkout.0",
        "aftershock.checkout.1",
    ]


def test_a_prometheus_bound_becomes_a_count_of_samples_out_of_bounds() -> None:
    probes = ctk.export(MAPPABLE["pod delete, one"], selectors=SELECTORS)["steady-state-hypothesis"]["probes"]
    errors = next(p for p in probes if p["name"] == "errors")
    query = errors["provider"]["arguments"]["query"]
    assert query.startswith("(count((sum(rate(") and ">= 0.5" in query and "absent(" in query
    assert errors["tolerance"] == {"type": "jsonpath", "path": "$.data.result[0].value[1]", "expect": "0"}


@pytest.mark.parametrize(
    ("fault", "mode", "words"),
    [
        ({"duration": "1m", "nodeDrain": {}}, "one", "rollback (uncordon_node) cannot name them"),
        ({"duration": "1m", "nodeTaint": {"effect": "NoExecute"}}, "one", "no action that taints"),
        (
            {"duration": "1m", "litmus": {"experiment": "pod-cpu-hog", "chaosServiceAccount": "litmus"}},
            "one",
            "LitmusChaos",
        ),
        ({"duration": "1m", "networkPartition": {}}, "one", "use mode all"),
    ],
)
def test_faults_without_a_counterpart_are_refused_with_what_is_missing(
    fault: Body, mode: str, words: str
) -> None:
    with pytest.raises(ctk.NotMappable) as info:
        ctk.export(experiment(fault, mode=mode))
    assert any(words in m for m in info.value.missing), info.value.missing


def test_every_missing_part_is_named_at_once() -> None:
    body = experiment(
        {"duration": "1m", "nodeTaint": {}},
        probes=[{"name": "body", "http": {"url": "http://x/", "bodyContains": "ok"}}, PROBES[2]],
    )
    with pytest.raises(ctk.NotMappable) as info:
        ctk.export(body)  # no selectors: readyAtLeast cannot be counted
    assert len(info.value.missing) == 3, info.value.missing


def test_import_refuses_code_and_names_each_activity() -> None:
    foreign = {
        "version": "1.0.0",
        "title": "foreign",
        "description": "d",
        "method": [
            {
                "type": "action",
                "name": "shell",
                "provider": {"type": "process", "path": "rm", "arguments": "-rf /"},
            },
            {
                "type": "action",
                "name": "mine",
                "provider": {
                    "type": "python",
                    "module": "os",
                    "func": "system",
                    "arguments": {"command": "x"},
                },
            },
        ],
        "steady-state-hypothesis": {
            "title": "t",
            "probes": [
                {
                    "type": "probe",
                    "name": "custom",
                    "tolerance": True,
                    "provider": {"type": "python", "module": "mymod", "func": "check"},
                }
            ],
        },
    }
    with pytest.raises(ctk.NotMappable) as info:
        ctk.import_experiment(foreign)
    text = "\n".join(info.value.missing)
    assert "action 'shell' (process)" in text and "action 'mine' (os.system)" in text
    assert "probe 'custom' (mymod.check)" in text


def test_a_hand_written_pod_delete_imports_without_the_extension() -> None:
    written = {
        "version": "1.0.0",
        "title": "Kill a checkout pod",
        "description": "by hand",
        "method": [
            {
                "type": "action",
                "name": "terminate",
                "provider": {
                    "type": "python",
                    "module": "chaosk8s.pod.actions",
                    "func": "terminate_pods",
                    "arguments": {"label_selector": "app=checkout,tier in (web,api)", "ns": "shop", "qty": 2},
                },
            }
        ],
    }
    body = ctk.import_experiment(written, namespace="shop")
    assert body["metadata"] == {"name": "kill-a-checkout-pod", "namespace": "shop"}
    spec = ChaosExperimentSpec.model_validate(body["spec"])
    assert spec.target is not None and spec.target.mode == "fixed" and spec.target.value == 2
    assert spec.target.selector.to_json() == {
        "matchLabels": {"app": "checkout"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}],
    }


RUN: Body = {
    "metadata": {
        "name": "checkout-1766131200",
        "namespace": "shop",
        "creationTimestamp": "2026-11-29T10:00:00Z",
    },
    "spec": {**MAPPABLE["partition"]["spec"], "experiment": "checkout"},
    "status": {
        "phase": "Completed",
        "verdict": "Failed",
        "severity": "medium",
        "startTime": "2026-11-29T10:00:01Z",
        "completionTime": "2026-11-29T10:01:30Z",
        "revertedAt": "2026-11-29T10:01:02Z",
        "claimedBy": "op-0",
        "targets": [
            {"kind": "Pod", "name": "checkout-a", "namespace": "shop", "injectedAt": "2026-11-29T10:00:02Z"}
        ],
        "probes": [
            {"name": "health", "type": "http", "before": "Held", "after": "Failed", "lastAnswer": "HTTP 503"}
        ],
        "findings": [{"severity": "medium", "title": "slow", "detail": "45 s"}],
    },
}


def test_a_journal_has_chaos_toolkit_s_shape_and_says_what_happened() -> None:
    exported = ctk.export(RUN | {"metadata": {"name": "checkout", "namespace": "shop"}})
    doc = ctk.journal(RUN, exported, version="1.2.3")
    assert set(doc) >= {
        "chaoslib-version",
        "platform",
        "node",
        "experiment",
        "start",
        "end",
        "duration",
        "status",
        "deviated",
        "steady_states",
        "run",
        "rollbacks",
    }
    assert (doc["status"], doc["deviated"]) == ("completed", True)  # it ran; the system deviated
    assert doc["duration"] == 89.0 and doc["node"] == "op-0"
    assert doc["steady_states"]["before"]["steady_state_met"] is True
    assert doc["steady_states"]["after"]["steady_state_met"] is False
    [ran] = doc["run"]
    assert ran["activity"]["name"] == "partition-target-pods" and ran["duration"] == 60.0
    assert ran["status"] == "succeeded" and ran["output"]["targets"][0]["name"] == "checkout-a"
    assert [r["activity"]["name"] for r in doc["rollbacks"]] == ["remove-partition"]
    assert doc["aftershock"]["findings"][0]["title"] == "slow"


def test_a_run_that_could_not_be_exported_still_gets_a_journal() -> None:
    drain = {
        **RUN,
        "spec": {**RUN["spec"], "fault": {"duration": "1m", "nodeDrain": {}}},
        "status": {"phase": "Errored", "reason": "Forbidden"},
    }
    try:
        ctk.export({"metadata": {"name": "checkout", "namespace": "shop"}, "spec": drain["spec"]})
    except ctk.NotMappable as exc:
        experiment_doc = ctk.fallback_experiment(drain, exc.missing)
    doc = ctk.journal(drain, experiment_doc, version="1.2.3")
    assert doc["status"] == "failed" and doc["run"] == [] and doc["rollbacks"] == []
    assert doc["experiment"]["method"][0]["name"] == "aftershock-nodeDrain"


def quiet(where: Path) -> list[str]:
    """chaos's options for an empty settings file and a log of its own, both in `where`."""
    (where / "settings.yaml").write_text("{}\n")
    return ["--settings", str(where / "settings.yaml"), "--log-file", str(where / "chaostoolkit.log")]


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def example_experiments() -> list[Body]:
    docs = [d for path in EXAMPLES for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in docs if d.get("kind") == "ChaosExperiment"]


@pytest.mark.parametrize("body", example_experiments(), ids=lambda b: b["metadata"]["name"])
def test_chaos_validate_accepts_every_export_of_every_example(body: Body, tmp_path: Path) -> None:
    """The real `chaos validate` (chaostoolkit with chaosk8s, chaosprometheus and chaostoxi): each
    example exports to something it accepts, or is refused with what is missing."""
    selectors = {"Deployment/checkout": "app=checkout"}
    try:
        exported = ctk.export(body, selectors=selectors)
    except ctk.NotMappable as exc:
        kinds = set(body["spec"]["fault"]) - {"duration"}
        some_pods = "networkPartition" in kinds and body["spec"]["target"].get("mode") != "all"
        assert (kinds & {"litmus", "nodeDrain", "nodeTaint"} or some_pods) and exc.missing, exc.missing
        return
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(exported))
    done = subprocess.run(
        [str(Path(sys.executable).parent / "chaos"), *quiet(tmp_path), "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert normal(ctk.import_experiment(exported)) == normal(body)
