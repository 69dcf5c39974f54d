"""What the real kstatus library (sigs.k8s.io/cli-utils) concludes about our live objects.

Flux, Argo CD, `kubectl wait` and cli-utils' appliers read Ready/Reconciling/Stalled and
observedGeneration through kstatus. These tests feed objects read from the API server to the
library itself (the helper in hack/kstatus) instead of our reading of its rules: an active run is
InProgress, an Errored one Failed, a finished one Current; experiments as their conditions say.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from kubernetes import client

from aftershock.core.conditions import run_conditions
from aftershock.core.experiment_status import experiment_status
from tests.support.chaos import GROUP, VERSION, Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.kstatus import kstatus, run_helper, verdict
from tests.support.operator import OperatorProcess
from tests.support.policies import OPT_IN
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

ACTIVE = ("Pending", "Injecting", "Observing", "Reverting")
# what kstatus must say for a run in each phase
EXPECTED = {
    **dict.fromkeys(ACTIVE, "InProgress"),
    "Completed": "Current",
    "Aborted": "Current",
    "Skipped": "Current",
    "Errored": "Failed",
}
# kstatus's message when it decided Current from our Ready condition (and not by default: an object
# without any condition it knows is "Resource is current")
READY_MESSAGE = "Resource is Ready"


@pytest.fixture
def chaos(api: client.ApiClient, namespace: str, operator: OperatorProcess) -> Chaos:
    return Chaos(api, namespace)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _conditions(obj: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


def _caught_up(obj: dict[str, Any]) -> bool:
    """The operator has written conditions for the object's current generation."""
    status = obj.get("status") or {}
    return (
        bool(status.get("conditions")) and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


# --- the helper itself -----------------------------------------------------------------------


def _deployment(name: str, *, generation: int, observed: int, ready: int) -> dict[str, Any]:
    body = deployment(name, replicas=2)
    body["metadata"].update(namespace="shop", generation=generation)
    body["status"] = {
        "observedGeneration": observed,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": ready,
        "availableReplicas": 2,
        "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}],
    }
    return body


def test_helper_prints_the_library_verdict_per_object_from_yaml_json_and_lists(tmp_path: Any) -> None:
    fresh = _deployment("fresh", generation=2, observed=1, ready=2)
    short = _deployment("short", generation=1, observed=1, ready=1)
    done = _deployment("done", generation=1, observed=1, ready=2)
    leaving = {
        **done,
        "metadata": {**done["metadata"], "name": "leaving", "deletionTimestamp": "2026-01-01T00:00:00Z"},
    }
    stream = tmp_path / "objects.yaml"
    stream.write_text(
        f"{yaml.safe_dump(fresh)}---\n---\n{yaml.safe_dump(short)}"
    )  # an empty document between
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": [done, leaving]})
    proc = run_helper(str(stream), "-", stdin=listed)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(line["name"], line["status"]) for line in lines] == [
        ("fresh", "InProgress"),
        ("short", "InProgress"),
        ("done", "Current"),
        ("leaving", "Terminating"),
    ]
    assert lines[0]["message"] == "Deployment generation is 2, but latest observed generation is 1"
    assert lines[1]["message"] == "Ready: 1/2"
    assert lines[2]["message"] == "Deployment is available. Replicas: 2"
    assert lines[0]["namespace"] == "shop" and lines[0]["apiVersion"] == "apps/v1"

    broken = run_helper(stdin="[1, 2]")
    assert broken.returncode == 2 and "not an object" in broken.stderr
    wrong = run_helper(stdin=json.dumps({**done, "metadata": {**done["metadata"], "generation": "one"}}))
    assert wrong.returncode == 1 and "generation" in json.loads(wrong.stdout)["error"]


# --- ChaosRuns whose journal is written by hand, with the conditions run_conditions computes -------

# one path through the phase machine per terminal phase: together they visit every phase
PATHS = {
    "Completed": ["Pending", "Injecting", "Observing", "Reverting", "Completed"],
    "Skipped": ["Pending", "Skipped"],
    "Aborted": ["Pending", "Injecting", "Aborted"],
    "Errored": ["Pending", "Injecting", "Observing", "Errored"],
}
REASONS = {
    "Pending": ("Accepted", "resolving targets"),
    "Injecting": ("Injecting", "podDelete on checkout-1"),
    "Observing": ("Observing", "waiting for 1 pod to recover"),
    "Reverting": ("Reverting", "fault held; reverting it"),
    "Completed": ("Completed", "recovered in 2.1s"),
    "Skipped": ("OutsideWindow", "no ChaosPolicy window is open"),
    "Aborted": ("PolicySuspended", "the kill switch is on"),
    "Errored": ("Forbidden", "cannot delete resource pods"),
}


def test_the_paths_visit_every_phase() -> None:
    assert {phase for path in PATHS.values() for phase in path} == set(EXPECTED)


@pytest.fixture
def journal_namespace(solo_namespace: str, api: client.ApiClient) -> Iterator[str]:
    """A namespace no operator serves (the session operator ignores t-solo-*): nobody else writes
    the runs' status here. It holds the experiment the runs name (admission requires it)."""
    Chaos(api, solo_namespace).create_experiment(experiment("journal", app="none"))
    yield solo_namespace


@pytest.mark.parametrize("end", list(PATHS))
def test_run_conditions_read_by_kstatus_in_every_phase(
    api: client.ApiClient, journal_namespace: str, end: str
) -> None:
    chaos = Chaos(api, journal_namespace)
    name = f"journal-{end.lower()}"
    chaos.objects.create_namespaced_custom_object(
        GROUP,
        VERSION,
        journal_namespace,
        "chaosruns",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChaosRun", "metadata": {"name": name},
         "spec": {"experiment": "journal"}},
    )  # fmt: skip
    assert verdict(chaos.get("chaosruns", name)).status == "Current"  # no conditions: kstatus cannot tell
    start = datetime.now(UTC).replace(microsecond=0)
    for step, phase in enumerate(PATHS[end]):
        moment = start + timedelta(minutes=step)  # each write a minute later: transition times tell
        live = chaos.get("chaosruns", name)
        reason, message = REASONS[phase]
        generation = live["metadata"]["generation"]
        conditions = run_conditions(
            phase,
            reason,
            message,
            generation,
            (live.get("status") or {}).get("conditions"),
            moment,
        )
        chaos.objects.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            journal_namespace,
            "chaosruns",
            name,
            {"status": {"phase": phase, "reason": reason, "message": message,
                        "observedGeneration": generation, "conditions": conditions}},
        )  # fmt: skip
        live = chaos.get("chaosruns", name)
        assert live["status"]["phase"] == phase
        assert live["status"]["conditions"] == conditions  # the API server kept them as written
        seen = verdict(live)
        assert seen.status == EXPECTED[phase], (phase, seen, live["status"])
        if seen.status == "InProgress":
            assert seen.message == message  # the Reconciling condition is what kstatus reports
        elif seen.status == "Failed":
            assert seen.message == message  # the Stalled condition
        else:
            assert seen.message == READY_MESSAGE
        # one transition into the active stretch (Pending's time stays), one out of it
        reconciling = next(c for c in live["status"]["conditions"] if c["type"] == "Reconciling")
        assert _time(reconciling["lastTransitionTime"]) == (start if phase in ACTIVE else moment)


def test_runs_piped_from_kubectl_in_every_phase(
    api: client.ApiClient, cluster: Cluster, journal_namespace: str
) -> None:
    chaos = Chaos(api, journal_namespace)
    now = datetime.now(UTC)
    for phase in EXPECTED:
        name = f"list-{phase.lower()}"
        chaos.objects.create_namespaced_custom_object(
            GROUP,
            VERSION,
            journal_namespace,
            "chaosruns",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChaosRun", "metadata": {"name": name},
             "spec": {"experiment": "journal"}},
        )  # fmt: skip
        generation = chaos.get("chaosruns", name)["metadata"]["generation"]
        reason, message = REASONS[phase]
        chaos.objects.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            journal_namespace,
            "chaosruns",
            name,
            {"status": {"phase": phase, "reason": reason, "message": message, "observedGeneration": generation,
                        "conditions": run_conditions(phase, reason, message, generation, [], now)}},
        )  # fmt: skip
    listed = cluster.kubectl("get", "chaosruns", "-n", journal_namespace, "-o", "yaml").stdout
    proc = run_helper(stdin=listed)
    assert proc.returncode == 0, proc.stderr
    seen = {line["name"]: line["status"] for line in map(json.loads, proc.stdout.splitlines())}
    assert seen == {f"list-{phase.lower()}": status for phase, status in EXPECTED.items()}


def test_experiment_with_an_invalid_schedule_is_failed(api: client.ApiClient, journal_namespace: str) -> None:
    """The webhook refuses an invalid schedule, so one only exists where the operator had no
    webhook when it was created (GitOps onto a cluster without it). Its status is what the
    scheduler writes for it, computed by the same function, and kstatus reads it as Failed."""
    chaos = Chaos(api, journal_namespace)
    live = chaos.get("chaosexperiments", "journal")
    message = "schedule '61 * * * *': minute 61 is out of range 0-59"
    status = experiment_status(
        [],
        generation=live["metadata"]["generation"],
        previous_conditions=None,
        now=datetime.now(UTC),
        stalled_reason="InvalidSchedule",
        stalled_message=message,
        scheduled=True,
    )
    chaos.objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, journal_namespace, "chaosexperiments", "journal", {"status": status}
    )
    seen = verdict(chaos.get("chaosexperiments", "journal"))
    assert (seen.status, seen.message) == ("Failed", message)


# --- live objects the operator wrote ----------------------------------------------------------


def _experiment_when(chaos: Chaos, name: str, check: Any, what: str, timeout: float = 30) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        exp = chaos.get("chaosexperiments", name)
        return exp if _caught_up(exp) and check(exp) else None

    return wait_for(probe, timeout=timeout, message=f"experiment {name}: {what}")


def test_scheduled_suspended_and_edited_experiments_are_current(chaos: Chaos) -> None:
    chaos.create_experiment(experiment("yearly", app="none", extra_spec={"schedule": "@yearly"}))
    chaos.create_experiment(
        experiment("paused", app="none", extra_spec={"schedule": "@every 1m", "suspend": True})
    )
    chaos.create_experiment(experiment("held", app="none", extra_spec={"suspend": True}))  # run once, later

    yearly = _experiment_when(chaos, "yearly", lambda e: True, "conditions for its generation")
    paused = _experiment_when(
        chaos, "paused", lambda e: _conditions(e).get("Suspended") == "True", "Suspended True"
    )
    held = _experiment_when(
        chaos, "held", lambda e: _conditions(e).get("Suspended") == "True", "Suspended True"
    )
    for exp, seen in zip((yearly, paused, held), kstatus(yearly, paused, held), strict=True):
        assert _conditions(exp)["Ready"] == "True", exp["status"]
        assert (seen.name, seen.status, seen.message) == (exp["metadata"]["name"], "Current", READY_MESSAGE)

    # an edit bumps the generation: InProgress until the operator has observed it, then Current
    chaos.objects.patch_namespaced_custom_object(
        GROUP, VERSION, chaos.namespace, "chaosexperiments", "yearly", {"spec": {"schedule": "@monthly"}}
    )
    edited = chaos.get("chaosexperiments", "yearly")
    if edited["status"]["observedGeneration"] != edited["metadata"]["generation"]:
        assert verdict(edited).status == "InProgress"
    edited = _experiment_when(chaos, "yearly", lambda e: e["metadata"]["generation"] > 1, "the edit observed")
    assert verdict(edited).status == "Current"


def test_experiment_stalled_by_policy_is_failed(api: client.ApiClient, namespace: str, chaos: Chaos) -> None:
    """A namespace that stops opting in: every slot is Skipped by the policy, and the experiment
    says Stalled (kstatus: Failed) with the policy's reason."""
    chaos.create_experiment(experiment("ticking", app="none", extra_spec={"schedule": "@every 2s"}))
    _experiment_when(chaos, "ticking", lambda e: True, "conditions for its generation")
    opt_in_key = next(iter(OPT_IN))
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": {opt_in_key: None}}})
    stalled = _experiment_when(
        chaos, "ticking", lambda e: _conditions(e).get("Stalled") == "True", "Stalled True", timeout=45
    )
    reason, message = next(
        (c["reason"], c["message"]) for c in stalled["status"]["conditions"] if c["type"] == "Stalled"
    )
    assert reason == "NamespaceNotSelected", stalled["status"]
    seen = verdict(stalled)
    assert (seen.status, seen.message) == ("Failed", message), stalled["status"]


def _slow_workload(api: client.ApiClient, namespace: str, app: str) -> None:
    """Replacement pods turn Ready 8 s after they start: the run stays in Observing that long."""
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment(app, replicas=2, ready_delay="8s")
    )
    wait_for(lambda: len(ready_pods(api, namespace, app)) == 2, timeout=90, message=f"2 Ready pods of {app}")


def _run_in(chaos: Chaos, experiment_name: str, phases: set[str], timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        runs = chaos.runs(experiment_name)
        found = [r for r in runs if (r.get("status") or {}).get("phase") in phases]
        return found[0] if found else None

    return wait_for(probe, timeout=timeout, interval=0.1, message=f"a run of {experiment_name} in {phases}")


def test_run_once_experiment_is_in_progress_while_its_run_is_active(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    _slow_workload(api, namespace, "steady")
    chaos.create_experiment(experiment("once", app="steady"))
    busy = _experiment_when(chaos, "once", lambda e: e["status"].get("active"), "a run listed as active")
    seen = verdict(busy)
    assert seen.status == "InProgress", (seen, busy["status"])
    assert busy["status"]["active"][0]["name"] in seen.message

    run = _run_in(chaos, "once", {"Completed", "Aborted", "Skipped", "Errored"}, timeout=90)
    assert run["status"]["phase"] == "Completed", run["status"]
    idle = _experiment_when(
        chaos,
        "once",
        lambda e: not e["status"].get("active") and e["status"].get("lastRun", {}).get("name") == run["metadata"]["name"],
        "the finished run as lastRun",
    )  # fmt: skip
    assert (verdict(idle).status, verdict(idle).message) == ("Current", READY_MESSAGE)


def test_run_driven_by_the_operator_is_in_progress_while_observing_and_current_when_completed(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    _slow_workload(api, namespace, "watched")
    chaos.create_experiment(experiment("observed", app="watched"))

    observing = _run_in(chaos, "observed", {"Observing"}, timeout=60)
    seen = verdict(observing)
    status = observing["status"]
    assert seen.status == "InProgress", (seen, status)
    assert status.get("observedGeneration") == observing["metadata"]["generation"], status
    assert _conditions(observing) == {"Ready": "False", "Reconciling": "True", "Stalled": "False"}

    completed = _run_in(chaos, "observed", {"Completed", "Aborted", "Skipped", "Errored"}, timeout=90)
    status = completed["status"]
    assert status["phase"] == "Completed", status
    seen = verdict(completed)
    assert (seen.status, seen.message) == ("Current", READY_MESSAGE), (seen, status)
    assert status.get("observedGeneration") == completed["metadata"]["generation"], status
    assert _conditions(completed) == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}
    # Reconciling turned False when the run finished (not before, not at some later rewrite)
    reconciling = next(c for c in status["conditions"] if c["type"] == "Reconciling")
    turned = _time(reconciling["lastTransitionTime"])
    assert abs((turned - _time(status["completionTime"])).total_seconds()) <= 2, status
