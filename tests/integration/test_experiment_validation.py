"""Invalid ChaosExperiments are refused by the API server itself (schema + CEL), with messages a
person understands, and nothing is stored."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import GROUP, VERSION, experiment

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(body: dict[str, Any]) -> None:
        node = body
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return apply


def _drop(path: str) -> Mutation:
    def apply(body: dict[str, Any]) -> None:
        node = body
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return apply


CASES: list[tuple[str, Mutation, str]] = [
    ("no fault kind", _set("spec.fault", {"duration": "30s"}), "exactly one fault kind"),
    # only podDelete exists in this version: a second kind is an unknown field, which kubectl's
    # default strict field validation refuses
    (
        "two fault kinds",
        _set("spec.fault", {"podDelete": {}, "nodeReboot": {}}),
        'unknown field "spec.fault.nodeReboot"',
    ),
    ("percent 0", lambda b: b["spec"]["target"].update(mode="percent", value=0), "percentage from 1 to 100"),
    (
        "percent 101",
        lambda b: b["spec"]["target"].update(mode="percent", value=101),
        "percentage from 1 to 100",
    ),
    ("percent without value", _set("spec.target.mode", "percent"), "percentage from 1 to 100"),
    ("fixed 0", lambda b: b["spec"]["target"].update(mode="fixed", value=0), "count of at least 1"),
    ("value with mode one", _set("spec.target.value", 2), "value must not be set when mode is one"),
    ("negative duration", _set("spec.recovery.timeout", "-5m"), "spec.recovery.timeout"),
    ("malformed duration", _set("spec.recovery.objective", "5 minutes"), "spec.recovery.objective"),
    (
        "objective longer than timeout",
        _set("spec.recovery", {"objective": "10m", "timeout": "1m"}),
        "must not be longer than recovery.timeout",
    ),
    ("unknown target kind", _set("spec.target.kind", "CronJob"), 'Unsupported value: "CronJob"'),
    ("unknown mode", _set("spec.target.mode", "most"), 'Unsupported value: "most"'),
    (
        "target in kube-system",
        _set("spec.target.namespace", "kube-system"),
        "kube-system is a system namespace",
    ),
    (
        "target in kube-node-lease",
        _set("spec.target.namespace", "kube-node-lease"),
        "kube-node-lease is a system namespace",
    ),
    ("empty selector", _set("spec.target.selector", {}), "target.selector must not be empty"),
    ("no target", _drop("spec.target"), "spec.target: Required value"),
    (
        "malformed cron",
        _set("spec.schedule", "every day at noon"),
        "schedule must be a 5-field cron expression",
    ),
    ("empty time zone", _set("spec.timeZone", ""), "timeZone must be an IANA time zone name"),
    ("name too long", _set("metadata.name", "x" * 53), "metadata.name must be at most 52 characters"),
    ("negative history limit", _set("spec.successfulRunsHistoryLimit", -1), "successfulRunsHistoryLimit"),
    ("bad concurrency policy", _set("spec.concurrencyPolicy", "Sometimes"), 'Unsupported value: "Sometimes"'),
    ("negative grace period", _set("spec.fault.podDelete.gracePeriodSeconds", -1), "gracePeriodSeconds"),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_experiment_is_rejected_with_a_clear_message(
    api: client.ApiClient, namespace: str, crds: None, case: str, mutate: Mutation, expected: str
) -> None:
    body = copy.deepcopy(experiment("invalid", app="checkout"))
    mutate(body)
    objects = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "chaosexperiments", body, field_validation="Strict"
        )
    assert refused.value.status in (400, 422), refused.value.body  # 400: strict decoding of unknown fields
    message = json.loads(refused.value.body)["message"]
    assert expected in message, f"{case}: {message}"
    stored = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, "chaosexperiments")["items"]
    assert stored == []


def test_valid_experiment_from_the_design_is_accepted(
    api: client.ApiClient, namespace: str, crds: None
) -> None:
    body = experiment("checkout-pod-delete", app="checkout", mode="percent", value=50)
    body["spec"].update(
        schedule="*/30 9-17 * * 1-5",
        timeZone="Europe/Berlin",
        concurrencyPolicy="Forbid",
        startingDeadline="5m",
        dryRun=True,
        suspend=True,
    )
    created = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "chaosexperiments", body, dry_run="All"
    )
    assert created["spec"]["successfulRunsHistoryLimit"] == 5  # defaults applied by the schema
    assert created["spec"]["failedRunsHistoryLimit"] == 10
