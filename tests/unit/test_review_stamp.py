"""Review stamps (core/review.py): what they bind, and every way a copied or stale one is refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from aftershock.core import review

KEY = b"k" * 32
T0 = dt.datetime(2026, 11, 29, 1, 0, 0, tzinfo=dt.UTC)
SPEC: dict[str, Any] = {
    "target": {"kind": "Deployment", "selector": {"matchLabels": {"app": "web"}}, "mode": "one"},
    "fault": {"podDelete": {"gracePeriodSeconds": 0}},
    "recovery": {"objective": "10s", "timeout": "2m"},
}


def obj(
    name: str = "e1", namespace: str = "team-a", spec: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, **meta}, "spec": dict(spec or SPEC)}


def stamped(
    body: dict[str, Any], author: str = "alice", at: dt.datetime = T0, key: bytes = KEY
) -> dict[str, Any]:
    value = review.stamp(key, "ChaosExperiment", body, author, at)
    out = json.loads(json.dumps(body))
    out["metadata"].setdefault("annotations", {})[review.ANNOTATION] = value
    return out


def created(body: dict[str, Any], at: dt.datetime = T0, uid: str = "u1") -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out["metadata"]["creationTimestamp"] = at.isoformat().replace("+00:00", "Z")
    out["metadata"]["uid"] = uid
    return out


def test_a_create_stamp_holds_for_the_object_created_with_it() -> None:
    found = review.verify(KEY, "ChaosExperiment", created(stamped(obj()), T0 + dt.timedelta(seconds=2)))
    assert found.author == "alice" and found.uid == ""


def test_an_update_stamp_binds_the_uid() -> None:
    body = created(obj(), uid="u1")
    assert review.verify(KEY, "ChaosExperiment", stamped(body, at=T0 + dt.timedelta(days=3))).uid == "u1"
    other = stamped(body, at=T0 + dt.timedelta(days=3))
    other["metadata"]["uid"] = "u2"
    with pytest.raises(review.Unreviewed, match="another object of the same name"):
        review.verify(KEY, "ChaosExperiment", other)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b["spec"]["fault"]["podDelete"].update(gracePeriodSeconds=30), "does not match"),
        (lambda b: b["spec"]["target"].update(namespace="team-b"), "does not match"),
        (lambda b: b["spec"]["target"].update(mode="all"), "does not match"),
        (lambda b: b["metadata"].update(name="e2"), "does not match"),
        (lambda b: b["metadata"].update(namespace="team-b"), "does not match"),
    ],
)
def test_a_stamp_does_not_survive_a_change_of_what_it_reviewed(change: Any, message: str) -> None:
    body = created(stamped(obj()))
    change(body)
    with pytest.raises(review.Unreviewed, match=message):
        review.verify(KEY, "ChaosExperiment", body)


def test_a_stamp_copied_onto_a_recreated_object_is_refused() -> None:
    body = created(stamped(obj()), T0 + dt.timedelta(minutes=5), uid="u9")
    with pytest.raises(review.Unreviewed, match="copied onto a re-created object"):
        review.verify(KEY, "ChaosExperiment", body)


def test_another_key_or_author_or_time_does_not_verify() -> None:
    body = created(stamped(obj(), key=b"x" * 32))
    with pytest.raises(review.Unreviewed, match="does not match"):
        review.verify(KEY, "ChaosExperiment", body)
    forged = created(stamped(obj()))
    data = json.loads(forged["metadata"]["annotations"][review.ANNOTATION])
    data["author"] = "system:admin"
    forged["metadata"]["annotations"][review.ANNOTATION] = json.dumps(data)
    with pytest.raises(review.Unreviewed, match="does not match"):
        review.verify(KEY, "ChaosExperiment", forged)


@pytest.mark.parametrize("value", [None, "", "not json", '{"author": "a"}', "[]"])
def test_missing_or_malformed_stamps_are_refused_with_a_reason(value: str | None) -> None:
    body = created(obj())
    if value is not None:
        body["metadata"]["annotations"] = {review.ANNOTATION: value}
    with pytest.raises(review.Unreviewed) as info:
        review.verify(KEY, "ChaosExperiment", body)
    assert "review" in str(info.value)


def test_defaults_filled_in_later_do_not_void_a_stamp() -> None:
    """A CRD upgrade that defaults a field the author left out must not invalidate every stamp."""
    body = created(stamped(obj()))
    body["spec"]["suspend"] = False  # the model's default, as the API server would fill it in
    body["spec"]["dryRun"] = False
    assert review.verify(KEY, "ChaosExperiment", body).author == "alice"


def test_the_refusal_says_what_to_do() -> None:
    text = review.refusal("ChaosExperiment e1", "it carries no review stamp")
    assert "nothing was injected" in text and "re-apply" in text


def test_at_admission_a_create_stamp_holds_before_the_object_has_a_creation_time() -> None:
    body = stamped(obj())
    assert review.verify(KEY, "ChaosExperiment", body, admitting=True).author == "alice"
    with pytest.raises(review.Unreviewed, match="an unknown time"):
        review.verify(KEY, "ChaosExperiment", body)
