from __future__ import annotations

from typing import Any

import pytest

from aftershock.api.common import Severity
from aftershock.core import litmus
from aftershock.core.litmus import EngineRequest, State, engine_env, engine_manifest, progress, reading


def test_the_catalog_has_every_experiment_the_issue_names() -> None:
    assert set(litmus.EXPERIMENTS) >= {
        "pod-delete",
        "container-kill",
        "pod-cpu-hog",
        "pod-memory-hog",
        "pod-network-latency",
        "pod-network-loss",
        "pod-network-corruption",
        "pod-network-duplication",
        "pod-network-partition",
        "pod-dns-error",
        "node-drain",
        "node-taint",
        "node-cpu-hog",
        "node-memory-hog",
    }
    nodes = {e.name for e in litmus.CATALOG.values() if e.scope is litmus.Scope.NODE}
    assert nodes >= {"node-drain", "node-taint", "node-cpu-hog", "node-memory-hog"}
    assert litmus.CATALOG["node-drain"].single_node and not litmus.CATALOG["node-cpu-hog"].single_node
    litmus.param_kinds()  # a parameter name has one shape across experiments


@pytest.mark.parametrize(
    ("experiment", "env", "expected"),
    [
        ("pod-network-latency", {"NETWORK_LATENCY": "300", "JITTER": "20"}, []),
        ("pod-network-latency", {"NETWORK_LATENCY": "300ms"}, ["NETWORK_LATENCY must be a whole number"]),
        ("pod-network-loss", {"NETWORK_PACKET_LOSS_PERCENTAGE": "101"}, ["a percentage from 0 to 100"]),
        ("pod-delete", {"FORCE": "yes"}, ["FORCE must be true or false"]),
        ("pod-delete", {"NETWORK_LATENCY": "1"}, ["not a parameter of pod-delete"]),
        ("pod-delete", {"TOTAL_CHAOS_DURATION": "60"}, ["set by aftershock from fault.duration"]),
        ("pod-delete", {"TARGET_PODS": "a"}, ["aftershock chooses the targets"]),
        ("pod-delete", {"CHAOSENGINE": "x"}, ["set by Litmus itself"]),
        ("pod-network-partition", {"POLICY_TYPES": "both"}, ["one of ingress, egress, all"]),
        (
            "pod-network-latency",
            {"DESTINATION_IPS": "10.0.0.1, 10.0.0.2"},
            ["comma-separated without spaces"],
        ),
        ("node-taint", {"TAINTS": "chaos=true:NoSchedule"}, []),
        ("pod-chaos-of-my-own", {}, ["not supported"]),
    ],
)
def test_env_is_checked_per_experiment(experiment: str, env: dict[str, str], expected: list[str]) -> None:
    problems = litmus.env_problems(experiment, env)
    assert len(problems) == len(expected), problems
    for problem, words in zip(problems, expected, strict=True):
        assert words in problem


def test_engine_names_are_deterministic_and_fit_a_label() -> None:
    run = "checkout-latency-1766131200"
    assert litmus.engine_name(run, "shop", "shop") == run
    other = litmus.engine_name(run, "team-a", "shop")
    assert other == litmus.engine_name(run, "team-a", "shop") != litmus.engine_name(run, "team-b", "shop")
    assert len(litmus.engine_name("x" * 52 + "-1766131200", "team-a", "shop")) <= 63
    assert litmus.result_name(run, "pod-delete") == f"{run}-pod-delete"


def request(**changes: Any) -> EngineRequest:
    base: dict[str, Any] = {
        "name": "lat-1",
        "namespace": "shop",
        "experiment": "pod-network-latency",
        "env": {"NETWORK_LATENCY": "300"},
        "duration_seconds": 60,
        "service_account": "litmus-admin",
        "app_kind": "Deployment",
        "app_label": "app=checkout",
        "target_pods": ["checkout-a", "checkout-b"],
        "labels": {"aftershock.dev/run": "uid-1"},
    }
    base.update(changes)
    return EngineRequest(**base)


def test_the_engine_hits_exactly_the_chosen_pods_for_the_duration() -> None:
    env = {e["name"]: e["value"] for e in engine_env(request())}
    assert env == {
        "NETWORK_LATENCY": "300",
        "TOTAL_CHAOS_DURATION": "60",
        "TARGET_PODS": "checkout-a,checkout-b",
        "PODS_AFFECTED_PERC": "100",
    }
    body = engine_manifest(request(owner={"kind": "ChaosRun", "name": "lat-1", "uid": "uid-1"}))
    spec = body["spec"]
    assert body["apiVersion"] == "litmuschaos.io/v1alpha1" and body["kind"] == "ChaosEngine"
    assert spec["engineState"] == "active" and spec["chaosServiceAccount"] == "litmus-admin"
    assert spec["appinfo"] == {"appns": "shop", "applabel": "app=checkout", "appkind": "deployment"}
    assert "annotationCheck" not in spec  # gone in Litmus 3.x
    assert [e["name"] for e in spec["experiments"]] == ["pod-network-latency"]
    assert body["metadata"]["labels"] == {"aftershock.dev/run": "uid-1"}
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_node_experiments_name_their_nodes() -> None:
    drain = {
        e["name"]: e["value"]
        for e in engine_env(request(experiment="node-drain", env={}, target_pods=[], target_nodes=["n1"]))
    }
    assert drain == {"TOTAL_CHAOS_DURATION": "60", "TARGET_NODE": "n1"}
    hog = {
        e["name"]: e["value"]
        for e in engine_env(
            request(experiment="node-cpu-hog", env={}, target_pods=[], target_nodes=["n1", "n2"])
        )
    }
    assert hog == {"TOTAL_CHAOS_DURATION": "60", "TARGET_NODES": "n1,n2", "NODES_AFFECTED_PERC": "100"}
    pods = [{"spec": {"nodeName": n}} for n in ("n2", "n1", "n2", None)]
    assert litmus.target_nodes(pods, single=False) == ["n2", "n1"]
    assert litmus.target_nodes(pods, single=True) == ["n2"]


def engine(status: dict[str, Any] | None = None, uid: str = "e-1") -> dict[str, Any]:
    return {"metadata": {"name": "lat-1", "uid": uid}, "status": status or {}}


def result(experiment_status: dict[str, Any], uid: str = "e-1", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"chaosUID": uid}},
        "status": {"experimentStatus": experiment_status, **status},
    }


def test_progress_follows_the_engine_and_its_own_result() -> None:
    assert progress(engine(), None).state is State.WAITING
    running = {"engineStatus": "initialized", "experiments": [{"status": "Running", "verdict": "Awaited"}]}
    assert progress(engine(running), None).state is State.RUNNING
    awaited = result({"phase": "Running", "verdict": "Awaited", "probeSuccessPercentage": "Awaited"})
    assert progress(engine(running), awaited).state is State.RUNNING
    passed = result({"phase": "Completed", "verdict": "Pass", "probeSuccessPercentage": "100"})
    done = progress(engine(running), passed)
    assert (done.state, done.verdict, done.probe_success) == (State.FINISHED, "Pass", "100")
    # a result left by an earlier engine of the same name does not speak for this one
    assert (
        progress(engine(running), result({"phase": "Completed", "verdict": "Fail"}, uid="old")).state
        is State.RUNNING
    )
    missing = {
        "engineStatus": "completed",
        "experiments": [{"status": "ChaosExperiment Not Found", "verdict": "Fail"}],
    }
    assert progress(engine(missing), None).state is State.NO_EXPERIMENT
    assert progress(engine({"engineStatus": "stopped"}), None).state is State.STOPPED
    completed = {"engineStatus": "completed", "experiments": [{"status": "Completed", "verdict": "Pass"}]}
    assert progress(engine(completed), None).verdict == "Pass"


def test_verdicts_become_findings() -> None:
    assert (
        reading(
            "pod-delete",
            progress(
                engine({"engineStatus": "completed"}), result({"phase": "Completed", "verdict": "Pass"})
            ),
        ).findings
        == ()
    )
    failed = result(
        {"phase": "Completed_With_Probe_Failure", "verdict": "Fail", "probeSuccessPercentage": "50"},
        probeStatuses=[
            {"name": "http-ok", "status": {"verdict": "Passed"}},
            {"name": "latency-slo", "status": {"verdict": "Failed"}},
        ],
    )
    read = reading("pod-network-latency", progress(engine({"engineStatus": "completed"}), failed))
    ((severity, title, detail),) = read.findings
    assert severity == Severity.HIGH and title == "Litmus verdict: Fail" and read.errored is None
    assert "probe success 50%" in detail and "latency-slo" in detail and "http-ok" not in detail
    errored = result(
        {
            "phase": "Error",
            "verdict": "Error",
            "errorOutput": {"errorCode": "TARGET_SELECTION_ERROR", "reason": "no pods"},
        }
    )
    read = reading("pod-delete", progress(engine({"engineStatus": "completed"}), errored))
    assert read.errored is not None and "TARGET_SELECTION_ERROR: no pods" in read.errored


def test_provisioning_is_for_pod_experiments_and_grants_what_they_need() -> None:
    assert litmus.can_provision("pod-delete") and not litmus.can_provision("node-drain")
    with pytest.raises(ValueError, match="cluster-wide"):
        litmus.rules_for("node-taint")
    partition = litmus.rules_for("pod-network-partition")
    assert any(r["resources"] == ["networkpolicies"] for r in partition)
    assert any("replicasets" in r["resources"] for r in partition)  # litmus-go reads the owner


def test_a_role_is_stale_only_when_its_rules_differ_as_sets() -> None:
    wanted = {"rules": litmus.rules_for("pod-network-partition")}
    as_stored = {
        "rules": [
            {**r, "verbs": list(reversed(r["verbs"])), "resourceNames": None}
            for r in reversed(wanted["rules"])
        ]
    }
    assert not litmus.rules_differ(as_stored, wanted)
    older = {"rules": [r for r in wanted["rules"] if "replicasets" not in r["resources"]]}
    assert litmus.rules_differ(older, wanted)
    assert litmus.rules_differ(
        {"rules": [*wanted["rules"], {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}, wanted
    )
    latency = litmus.rules_for("pod-network-latency")
    assert any("deployments" in r["resources"] for r in latency)
    assert not any(
        "secrets" in r["resources"]
        for e in litmus.EXPERIMENTS
        if litmus.can_provision(e)
        for r in litmus.rules_for(e)
    )
    account, role, binding = litmus.provisioned_objects("pod-delete", "shop", {"team": "sre"})
    assert (
        account["metadata"]["name"]
        == role["metadata"]["name"]
        == binding["metadata"]["name"]
        == "aftershock-litmus-pod-delete"
    )
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "aftershock-litmus-pod-delete", "namespace": "shop"}
    ]


def test_probes_are_passed_to_litmus_as_they_are() -> None:
    probe = {
        "name": "checkout-up",
        "type": "httpProbe",
        "mode": "Continuous",
        "runProperties": {"probeTimeout": "5s", "interval": "2s"},
        "httpProbe/inputs": {
            "url": "http://checkout",
            "method": {"get": {"criteria": "==", "responseCode": "200"}},
        },
    }
    spec = engine_manifest(request(probes=[probe]))["spec"]["experiments"][0]["spec"]
    assert spec["probe"] == [probe]
    assert "probe" not in engine_manifest(request())["spec"]["experiments"][0]["spec"]
