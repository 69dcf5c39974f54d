"""A 409 on create is "mine" only when the existing object carries the run's label."""

from __future__ import annotations

from typing import Any

import pytest

from aftershock.api.experiment import Fault
from aftershock.core.naming import LABEL_RUN, LABEL_TARGET_OF, is_dns1123_subdomain
from aftershock.engines.base import ARTIFACT_NAME_TAKEN, EngineError, InjectContext, create_owned
from aftershock.engines.litmus import LitmusEngine, _provision, _result_ours
from aftershock.engines.network_partition import policy_name

RUN = "uid-1"


def labelled(uid: str | None, **extra: str) -> dict[str, Any]:
    labels = {**({LABEL_RUN: uid} if uid else {}), **extra}
    return {"metadata": {"name": "x", "uid": "obj-uid", "labels": labels}}


def test_created_by_this_call() -> None:
    assert create_owned(lambda: True, lambda: pytest.fail("no read needed"), RUN, "x") is True


def test_existing_with_the_runs_label_is_ours() -> None:
    assert create_owned(lambda: False, lambda: labelled(RUN), RUN, "x") is False


@pytest.mark.parametrize(
    "existing", [labelled(None), labelled("uid-2"), {"metadata": {}}], ids=["none", "other", "bare"]
)
def test_existing_without_the_runs_label_ends_the_run(existing: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as error:
        create_owned(lambda: False, lambda: existing, RUN, "a NetworkPolicy named p in namespace shop")
    assert error.value.reason == ARTIFACT_NAME_TAKEN == "ArtifactNameTaken"
    assert "a NetworkPolicy named p in namespace shop already exists and was not made by this run" in str(
        error.value
    )
    assert "left untouched" in error.value.message


def test_deleted_between_create_and_read_is_created_again() -> None:
    answers = iter([False, True])
    assert create_owned(lambda: next(answers), lambda: None, RUN, "x") is True


def test_a_name_that_keeps_flapping_gives_up() -> None:
    with pytest.raises(EngineError, match="kept being created and deleted"):
        create_owned(lambda: False, lambda: None, RUN, "x")


def test_litmus_results_are_deleted_only_when_they_speak_for_the_run() -> None:
    engine = labelled(RUN)
    assert _result_ours(labelled(RUN), None, RUN)
    assert _result_ours(labelled(None, chaosUID="obj-uid"), engine, RUN)
    assert not _result_ours(labelled(None, chaosUID="obj-uid"), None, RUN)  # whose engine? unknown
    assert not _result_ours(labelled(None, chaosUID="other"), engine, RUN)
    assert not _result_ours(labelled(None), engine, RUN)
    assert not _result_ours(labelled("uid-2"), None, RUN)


@pytest.mark.parametrize("run", ["exp-1766131200", "r" * 253, "a" * 241 + "-" + "1" * 11])
@pytest.mark.parametrize("run_namespace", ["shop", "team-a"])
def test_partition_policy_names_are_valid_objects_names(run: str, run_namespace: str) -> None:
    name = policy_name(run, run_namespace, "shop")
    assert is_dns1123_subdomain(name) and name.startswith("aftershock-")
    assert name != policy_name(run[:-1] + "7", run_namespace, "shop")  # never another run's policy


def test_partition_policy_name_of_a_short_run_in_its_own_namespace() -> None:
    assert policy_name("exp-1766131200", "shop", "shop") == "aftershock-exp-1766131200"


class FakeKube:
    """Just enough of Kube for the Litmus engine's create and revert paths; records every write."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects  # (plural or kind, name) -> object
        self.writes: list[tuple[str, str]] = []

    def find_foreign(self, group: str, version: str, plural: str, namespace: str, name: str) -> Any:
        return self.objects.get((plural, name))

    def merge_patch_foreign(
        self, group: str, version: str, plural: str, namespace: str, name: str, body: Any
    ) -> Any:
        self.writes.append(("patch", name))

    def delete_foreign(
        self, group: str, version: str, plural: str, namespace: str, name: str, uid: Any = None
    ) -> bool:
        self.writes.append(("delete", name))
        return True

    def create_object(self, body: dict[str, Any]) -> bool:
        return (body["kind"], body["metadata"]["name"]) not in self.objects

    def find_object(self, kind: str, namespace: str, name: str) -> Any:
        return self.objects.get((kind, name))


def _litmus_context(kube: FakeKube) -> Any:
    fault = Fault.model_validate(
        {"duration": "30s", "litmus": {"experiment": "pod-delete", "provisionServiceAccount": True}}
    )
    return InjectContext(
        kube=kube,  # type: ignore[arg-type]
        run_name="kill-1766131200",
        run_namespace="shop",
        run_uid=RUN,
        fault=fault,
        target_namespace="shop",
    )


def test_litmus_revert_leaves_a_foreign_engine_and_its_result_alone() -> None:
    engine = {
        "metadata": {"name": "kill-1766131200", "uid": "e-1", "labels": {"owner": "tenant"}},
        "status": {"engineStatus": "running"},
    }
    result = {"metadata": {"name": "kill-1766131200-pod-delete", "labels": {"chaosUID": "e-1"}}}
    kube = FakeKube(
        {("chaosengines", "kill-1766131200"): engine, ("chaosresults", "kill-1766131200-pod-delete"): result}
    )
    assert LitmusEngine().revert(_litmus_context(kube)) == []
    assert kube.writes == []


def test_litmus_follow_refuses_a_foreign_engine() -> None:
    engine = {"metadata": {"name": "kill-1766131200", "uid": "e-1", "labels": {LABEL_RUN: "uid-2"}}}
    kube = FakeKube({("chaosengines", "kill-1766131200"): engine})
    followed = LitmusEngine().follow(_litmus_context(kube))
    assert followed.done and followed.errored is not None and followed.errored[0] == ARTIFACT_NAME_TAKEN


def test_litmus_revert_stops_and_deletes_the_runs_own_engine() -> None:
    engine = {"metadata": {"name": "kill-1766131200", "uid": "e-1", "labels": {LABEL_RUN: RUN}}, "status": {}}
    result = {"metadata": {"name": "kill-1766131200-pod-delete", "uid": "r-1", "labels": {LABEL_RUN: RUN}}}
    objects = {
        ("chaosengines", "kill-1766131200"): engine,
        ("chaosresults", "kill-1766131200-pod-delete"): result,
    }
    kube = FakeKube(objects)
    original = kube.delete_foreign

    def delete(group: str, version: str, plural: str, namespace: str, name: str, uid: Any = None) -> bool:
        objects.pop((plural, name), None)
        return original(group, version, plural, namespace, name, uid)

    kube.delete_foreign = delete  # type: ignore[method-assign]
    LitmusEngine().revert(_litmus_context(kube))
    assert kube.writes == [("delete", "kill-1766131200"), ("delete", "kill-1766131200-pod-delete")]


def test_provisioned_rbac_of_someone_else_ends_the_run() -> None:
    taken = {"metadata": {"name": "aftershock-litmus-pod-delete", "labels": {"owner": "tenant"}}}
    kube = FakeKube({("Role", "aftershock-litmus-pod-delete"): taken})
    body = {"kind": "Role", "metadata": {"name": "aftershock-litmus-pod-delete", "namespace": "shop"}}
    with pytest.raises(
        EngineError, match="a Role named aftershock-litmus-pod-delete already exists"
    ) as error:
        _provision(kube, body)  # type: ignore[arg-type]
    assert error.value.reason == ARTIFACT_NAME_TAKEN
    ours = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "aftershock"}}}
    _provision(FakeKube({("Role", "aftershock-litmus-pod-delete"): ours}), body)  # type: ignore[arg-type]


# --- exact scope: experiments Litmus runs on a label ------------------------------------------


class MarkingKube(FakeKube):
    """Records pod label patches (UID-preconditioned) and answers which pods carry a label."""

    def __init__(self, gone: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__({})
        self.gone = gone
        self.labels: dict[str, dict[str, str]] = {}

    def patch_pod_labels(self, namespace: str, name: str, uid: str | None, labels: dict[str, Any]) -> bool:
        if name in self.gone:
            return False
        current = self.labels.setdefault(name, {})
        for key, value in labels.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        return True

    def list_pods_in(self, scope: Any, selector: str) -> list[dict[str, Any]]:
        key, _, value = selector.partition("=")
        return [
            {"metadata": {"namespace": "shop", "name": n, "uid": f"uid-{n}"}}
            for n, labels in self.labels.items()
            if labels.get(key) == value
        ]

    def create_foreign(self, group: str, version: str, plural: str, namespace: str, body: Any) -> bool:
        self.writes.append(("create", body["metadata"]["name"]))
        self.objects[(plural, body["metadata"]["name"])] = body
        return True

    def delete_foreign(
        self, group: str, version: str, plural: str, namespace: str, name: str, uid: Any = None
    ) -> bool:
        self.writes.append(("delete", name))
        return self.objects.pop((plural, name), None) is not None


def _partition_context(kube: FakeKube, experiment: str = "pod-network-partition") -> Any:
    from aftershock.api.experiment import Target
    from aftershock.api.run import TargetRecord

    fault = Fault.model_validate(
        {"duration": "30s", "litmus": {"experiment": experiment, "chaosServiceAccount": "sa"}}
    )
    return InjectContext(
        kube=kube,  # type: ignore[arg-type]
        run_name="cut-1766131200",
        run_namespace="shop",
        run_uid=RUN,
        fault=fault,
        target_namespace="shop",
        target=Target.model_validate({"kind": "Deployment", "selector": {"matchLabels": {"app": "shop"}}}),
        targets=tuple(
            TargetRecord.model_validate({"kind": "Pod", "namespace": "shop", "name": n, "uid": f"uid-{n}"})
            for n in ("shop-a", "shop-b")
        ),
    )


def test_a_label_selected_litmus_experiment_hits_only_the_runs_marked_pods() -> None:
    kube = MarkingKube()
    ctx = _partition_context(kube)
    LitmusEngine().inject(ctx, ctx.targets[0])
    engine = kube.objects[("chaosengines", "cut-1766131200")]
    # not app=shop (every pod), nor the run label Litmus copies onto its own pods
    assert engine["spec"]["appinfo"]["applabel"] == f"{LABEL_TARGET_OF}={RUN}"
    assert {n for n, labels in kube.labels.items() if labels.get(LABEL_TARGET_OF) == RUN} == {
        "shop-a",
        "shop-b",
    }
    assert ("patch", "", "pods") in {(p.verb, p.group, p.resource) for p in LitmusEngine().damage(ctx.fault)}
    LitmusEngine().revert(ctx)
    assert all(LABEL_TARGET_OF not in labels for labels in kube.labels.values())


def test_a_label_selected_experiment_whose_pods_are_all_gone_injects_nothing() -> None:
    kube = MarkingKube(gone={"shop-a", "shop-b"})
    ctx = _partition_context(kube)
    with pytest.raises(EngineError) as error:
        LitmusEngine().inject(ctx, ctx.targets[0])
    assert error.value.reason == "TargetsGone" and kube.writes == []


def test_an_experiment_on_target_pods_keeps_the_workload_label_and_marks_nothing() -> None:
    kube = MarkingKube()
    ctx = _partition_context(kube, "pod-delete")
    LitmusEngine().inject(ctx, ctx.targets[0])
    engine = kube.objects[("chaosengines", "cut-1766131200")]
    assert engine["spec"]["appinfo"]["applabel"] == "app=shop"
    assert kube.labels == {}
