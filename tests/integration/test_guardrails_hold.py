"""Guardrails hold for the whole run, not only at its start (issue 12, class 5).

Each case puts a sustained fault in place (a NetworkPolicy partition held for ten minutes), then
takes away what allowed it — the namespace's opt-in label, a deny entry, every ChaosPolicy, the
window, a blackout, the fault kind, a lowered maxDuration — and asserts that the run ends Aborted
(GuardrailRevoked, naming what changed) and its NetworkPolicy is gone within 10 s, and that
nothing else in the namespace changed. A ChaosPolicy's maxDuration is also refused at admission.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import GROUP, VERSION, Chaos, experiment, our_network_policies, partition
from tests.support.operator import OperatorProcess
from tests.support.policies import OPT_IN, apply_policy, delete_policy, extra_policy, permissive
from tests.support.waiting import WaitTimeout, wait_for
from tests.support.workloads import deployment, pods_of, ready_pods

REVERT_WITHIN = 10.0  # seconds, from the change to the run Aborted and its NetworkPolicy gone
OPT_IN_KEY = next(iter(OPT_IN))
EVERY_FAULT = ["podDelete", "networkPartition", "litmus", "litmusNode"]


@pytest.fixture
def chaos(api: client.ApiClient, namespace: str, operator: OperatorProcess) -> Chaos:
    return Chaos(api, namespace)


def _policy_like_the_suite(**changes: Any) -> dict[str, Any]:
    """A second policy as loose as the suite's, but for `changes`: only those can revoke."""
    spec: dict[str, Any] = dict(permissive("unused")["spec"])
    spec.update(changes)
    return spec


@contextmanager
def _unlabelled(api: client.ApiClient, namespace: str) -> Iterator[None]:
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": {OPT_IN_KEY: None}}})
    yield


@contextmanager
def _stricter(api: client.ApiClient, **changes: Any) -> Iterator[None]:
    with extra_policy(api, **_policy_like_the_suite(**changes)):
        yield


@contextmanager
def _no_policy_at_all(api: client.ApiClient) -> Iterator[None]:
    """Delete every ChaosPolicy; put each back as it was afterwards (the suite relies on them)."""
    objects = client.CustomObjectsApi(api)
    saved = objects.list_cluster_custom_object(GROUP, VERSION, "chaospolicies")["items"]
    try:
        for policy in saved:
            delete_policy(api, policy["metadata"]["name"])
        yield
    finally:
        for policy in saved:
            meta = policy["metadata"]
            kept = {k: meta[k] for k in ("name", "labels", "annotations") if meta.get(k)}
            apply_policy(
                api,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ChaosPolicy",
                    "metadata": kept,
                    "spec": policy["spec"],
                },
            )
        apply_policy(api, permissive())  # whatever happened above, the suite's policy is back


def _window_excluding_now() -> dict[str, Any]:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    return {"start": f"{later:%H}:00", "end": f"{(later + dt.timedelta(hours=1)):%H}:00", "timeZone": "UTC"}


def _blackout_from_now() -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "start": (now - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


Change = Callable[[client.ApiClient, str], AbstractContextManager[None]]

CASES: dict[str, tuple[Change, str]] = {
    "namespace-unlabelled": (_unlabelled, "NamespaceNotSelected"),
    "namespace-denied": (lambda api, ns: _stricter(api, namespaces={"deny": [ns]}), "NamespaceDenied"),
    "every-policy-deleted": (lambda api, ns: _no_policy_at_all(api), "NoChaosPolicy"),
    "window-closed": (lambda api, ns: _stricter(api, windows=[_window_excluding_now()]), "OutsideWindow"),
    "blackout-begun": (lambda api, ns: _stricter(api, blackouts=[_blackout_from_now()]), "Blackout"),
    "fault-no-longer-allowed": (
        lambda api, ns: _stricter(api, allowedFaults=[f for f in EVERY_FAULT if f != "networkPartition"]),
        "FaultNotAllowed",
    ),
    "max-duration-lowered": (lambda api, ns: _stricter(api, maxDuration="5m"), "DurationExceeded"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_an_active_fault_is_reverted_when_its_guardrail_goes(
    api: client.ApiClient,
    namespace: str,
    chaos: Chaos,
    case: str,
) -> None:
    change, why = CASES[case]
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("web", replicas=2))
    wait_for(lambda: len(ready_pods(api, namespace, "web")) == 2, timeout=60, message="web steady")
    pods_before = sorted(p.metadata.uid for p in pods_of(api, namespace, "web"))
    chaos.create_experiment(experiment("held", app="web", fault=partition("10m")))

    def held() -> dict[str, Any] | None:
        phases = {"Observing", "Completed", "Aborted", "Skipped", "Errored"}
        return next((r for r in chaos.runs("held") if (r.get("status") or {}).get("phase") in phases), None)

    try:
        run = wait_for(held, timeout=60, message="the partition held (run Observing)")
    except WaitTimeout as exc:
        runs = [(r["metadata"]["name"], r.get("status")) for r in chaos.runs("held")]
        raise AssertionError(
            f"{exc}; runs: {runs}; experiment: {chaos.get('chaosexperiments', 'held')}"
        ) from exc
    assert run["status"]["phase"] == "Observing", run["status"]
    assert len(our_network_policies(api, namespace)) == 1
    name = run["metadata"]["name"]

    with change(api, namespace):
        changed = time.monotonic()

        def reverted() -> dict[str, Any] | None:
            current = chaos.get("chaosruns", name)
            done = (current.get("status") or {}).get("phase") == "Aborted"
            return current if done and not our_network_policies(api, namespace) else None

        try:
            ended = wait_for(
                reverted, timeout=REVERT_WITHIN, interval=0.1, message="run aborted and fault reverted"
            )
        except WaitTimeout as exc:
            took = time.monotonic() - changed
            left = [p.metadata.name for p in our_network_policies(api, namespace)]
            raise AssertionError(
                f"{case}: {took:.1f} s after the change: {exc}; NetworkPolicies left: {left};"
                f" run status: {chaos.get('chaosruns', name).get('status')}"
            ) from exc
        took = time.monotonic() - changed
        status = ended["status"]
        assert status["reason"] == "GuardrailRevoked", (case, took, status)
        assert why in status["message"], (case, took, status["message"])
        assert took < REVERT_WITHIN, f"{case}: reverted after {took:.1f} s"
        print(f"{case}: run Aborted and NetworkPolicy gone {took:.2f} s after the change")  # measured (-s)
    # the partition was all the run did: the pods are the same ones, nothing else was created
    assert sorted(p.metadata.uid for p in pods_of(api, namespace, "web")) == pods_before
    assert client.NetworkingV1Api(api).list_namespaced_network_policy(namespace).items == []


@pytest.mark.parametrize(
    ("field", "spec_change"),
    [
        ("fault.duration", {"fault": partition("2h")}),
        ("recovery.timeout", {"recovery": {"objective": "30s", "timeout": "90m"}}),
    ],
)
def test_max_duration_is_refused_at_admission(
    api: client.ApiClient, namespace: str, chaos: Chaos, field: str, spec_change: dict[str, Any]
) -> None:
    body = experiment("too-long", app="web", fault=partition("10m"))
    body["spec"].update(spec_change)
    with extra_policy(api, **_policy_like_the_suite(maxDuration="1h")) as policy:
        with pytest.raises(ApiException) as refused:
            chaos.create_experiment(body)
        # within the cap it is admitted (suspended: nothing needs to run)
        chaos.create_experiment(
            experiment("short-enough", app="web", fault=partition("1h"), extra_spec={"suspend": True})
        )
    assert refused.value.status == 403, refused.value.body
    message = json.loads(refused.value.body)["message"]
    assert f"{field} is" in message and "longer than the 1h" in message, message
    assert f"ChaosPolicy {policy}" in message and "maxDuration" in message, message
    listed = chaos.objects.list_namespaced_custom_object(GROUP, VERSION, namespace, "chaosexperiments")
    assert [e["metadata"]["name"] for e in listed["items"]] == ["short-enough"]
