from __future__ import annotations

from typing import Any

from aftershock.core.default_policy import APPLIED_HASH, Act, manifest, plan, spec_hash

SPEC: dict[str, Any] = {"blastRadius": {"maxPodsPercent": 50}, "allowedFaults": ["podDelete"]}


def live(spec: dict[str, Any], applied: str | None) -> dict[str, Any]:
    annotations = {APPLIED_HASH: applied} if applied else {}
    return {"metadata": {"name": "p", "annotations": annotations}, "spec": spec}


def test_absent_and_configured_is_created_with_the_hash_of_its_spec() -> None:
    assert plan(None, SPEC).act is Act.CREATE
    body = manifest("p", SPEC, {"team": "sre"})
    assert body["metadata"]["annotations"][APPLIED_HASH] == spec_hash(SPEC)
    assert body["metadata"]["labels"] == {
        "team": "sre",
        "app.kubernetes.io/managed-by": "aftershock-operator",
    }
    assert body["spec"] == SPEC


def test_the_hash_does_not_depend_on_key_order() -> None:
    assert spec_hash({"a": 1, "b": {"c": 2, "d": 3}}) == spec_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert spec_hash({"a": 1}) != spec_hash({"a": 2})


def test_an_unchanged_configuration_keeps_hand_edits() -> None:
    edited = live({**SPEC, "crossNamespace": True}, spec_hash(SPEC))
    assert plan(edited, SPEC).act is Act.KEEP


def test_a_changed_configuration_replaces_our_policy() -> None:
    decided = plan(live(SPEC, spec_hash(SPEC)), {**SPEC, "suspend": True})
    assert decided.act is Act.REPLACE and "changed" in decided.reason


def test_a_policy_of_that_name_we_did_not_make_is_never_touched() -> None:
    theirs = live({"suspend": True}, None)
    decided = plan(theirs, SPEC)
    assert decided.act is Act.KEEP and "did not create" in decided.reason
    assert plan(theirs, None).act is Act.KEEP


def test_turned_off_deletes_only_our_own() -> None:
    assert plan(live(SPEC, spec_hash(SPEC)), None).act is Act.DELETE
    assert plan(None, None).act is Act.KEEP
