"""LitmusChaos 3.x: one ChaosEngine per run, followed until Litmus reports its verdict.

What aftershock does to Litmus objects, and nothing more: it creates the ChaosEngine, merge-patches
`spec.engineState: stop` to abort, deletes the engine and its ChaosResult when the run is done, and
removes Litmus's finalizer only when the Litmus operator evidently is not running (it neither
confirmed the stop nor processed the deletion in time) — and then the run says so. Decisions about
names, env and verdicts are in core/litmus.py.

Only objects that carry the run's label are its own: a ChaosEngine of the run's engine name made by
someone else ends the run Errored (ArtifactNameTaken) and is never stopped, followed or deleted; a
ChaosResult is deleted only when it speaks for the run's own engine. The shared, provisioned
ServiceAccount, Role and RoleBinding are reused only when aftershock made them (managed-by label).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aftershock.api.common import Finding, Severity
from aftershock.api.experiment import Fault
from aftershock.api.run import EngineRecord, TargetRecord
from aftershock.core import litmus, litmus_params
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE, carries_run_label, label_value
from aftershock.core.node_faults import PodOnNode, displaced_by_drain, displaced_by_taint, litmus_taint
from aftershock.core.sweep import Artifact
from aftershock.core.watch_scope import Scope
from aftershock.engines import pod_marks
from aftershock.engines.base import (
    ABORT_WAIT_SECONDS,
    ARTIFACT_NAME_TAKEN,
    ArtifactFinder,
    EngineError,
    Followed,
    InjectContext,
    Permission,
    TargetUnit,
    create_owned,
    distinct_nodes,
)
from aftershock.kube import Conflict, Kube, Obj, forbidden, now

log = logging.getLogger(__name__)

LABEL_RUN_NAME = "aftershock.dev/run-name"
ENGINES = "chaosengines"
RESULTS = "chaosresults"
EXPERIMENTS = "chaosexperiments"
MANAGED_BY = "app.kubernetes.io/managed-by"
PROVISIONED_LABELS = {MANAGED_BY: "aftershock", "app.kubernetes.io/part-of": "litmus"}


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def stop_wait() -> float:
    """How long Litmus gets to confirm `engineState: stop` (it waits up to 180 s for its pods)."""
    return _seconds("AFTERSHOCK_LITMUS_STOP_SECONDS", 60)


def delete_wait() -> float:
    """How long Litmus gets to release its finalizer after the engine is deleted."""
    return _seconds("AFTERSHOCK_LITMUS_DELETE_SECONDS", 15)


def start_timeout() -> float:
    """How long Litmus may take to take a new engine up before the run is aborted."""
    return _seconds("AFTERSHOCK_LITMUS_START_SECONDS", 180)


def _get(kube: Kube, plural: str, namespace: str, name: str) -> Obj | None:
    return kube.find_foreign(litmus.GROUP, litmus.VERSION, plural, namespace, name)


def _find_engines(kube: Kube, scope: Scope) -> list[Obj]:
    """Our ChaosEngines; none when Litmus is not installed or the operator may not read them
    (Helm: litmus.enabled=false), so the other artifacts are still swept."""
    try:
        return kube.list_foreign(litmus.GROUP, litmus.VERSION, ENGINES, scope, LABEL_RUN)
    except Exception as exc:
        if forbidden(exc) is None:
            raise
        return []


def _stop_and_delete(kube: Kube, artifact: Artifact) -> None:
    """Litmus stops the experiment (and reverts its helpers) on stop and on deletion."""
    engine = (litmus.GROUP, litmus.VERSION, ENGINES, artifact.namespace, artifact.name)
    kube.merge_patch_foreign(*engine, {"spec": {"engineState": "stop"}})
    kube.delete_foreign(*engine)


CHAOS_ENGINES = ArtifactFinder(
    kind="ChaosEngine",
    find=_find_engines,
    remove=_stop_and_delete,
    by_hand="kubectl delete chaosengine --all-namespaces -l aftershock.dev/run={uid}",
)

# what the author must be allowed: Litmus acts with its own ServiceAccount, so the author must be
# able to start Litmus there; a node experiment also changes nodes, which are cluster-wide
_START_LITMUS = Permission("create", "litmuschaos.io", "chaosengines")
_CHANGE_NODES = Permission("patch", "", "nodes", namespaced=False)
_MARK_PODS = Permission("patch", "", "pods")
# granting a ServiceAccount permissions is a power of its own: only for who could do it directly
_PROVISIONING = (
    Permission("create", "", "serviceaccounts"),
    Permission("create", "rbac.authorization.k8s.io", "roles"),
    Permission("create", "rbac.authorization.k8s.io", "rolebindings"),
)


def rule_permissions(rules: Sequence[Mapping[str, Any]]) -> tuple[Permission, ...]:
    """Each verb on each resource an RBAC rule grants, as the request it allows ("pods/log" is the
    subresource log of pods)."""
    found: dict[Permission, None] = {}
    for rule in rules:
        for group in rule.get("apiGroups") or [""]:
            for resource in rule.get("resources") or []:
                name, _, sub = str(resource).partition("/")
                for verb in rule.get("verbs") or []:
                    found[Permission(str(verb), str(group), name, sub or None)] = None
    return tuple(found)


def _is_node_experiment(fault: Fault) -> bool:
    return fault.litmus is not None and fault.litmus.catalog.scope is litmus.Scope.NODE


class LitmusEngine:
    kind = "litmus"
    sustained = True
    self_timed = True
    picks_nodes = False
    heals_while_held = False
    paced_by_budgets = False
    artifacts = (CHAOS_ENGINES, pod_marks.TARGET_LABELS)

    def policy_kind(self, fault: Fault) -> str:
        """A policy names Litmus's node experiments litmusNode (allowed only when listed)."""
        return "litmusNode" if _is_node_experiment(fault) else "litmus"

    def damage(self, fault: Fault) -> tuple[Permission, ...]:
        if _is_node_experiment(fault):
            return (_START_LITMUS, _CHANGE_NODES)
        if fault.litmus is not None and fault.litmus.catalog.label_selected:
            return (_START_LITMUS, _MARK_PODS)  # the run labels the pods Litmus is to hit
        return (_START_LITMUS,)

    def grants(self, fault: Fault) -> tuple[Permission, ...]:
        """Provisioning creates a ServiceAccount, a Role and a RoleBinding: the author must be allowed
        to create them and hold every rule the Role grants (no escalation through the operator)."""
        if fault.litmus is None or not fault.litmus.provision_service_account:
            return ()
        return (*_PROVISIONING, *rule_permissions(litmus.rules_for(fault.litmus.experiment)))

    def target_unit(self, fault: Fault) -> TargetUnit:
        """Experiments that take TARGET_NODE(S) act on the nodes of the chosen pods."""
        on_nodes = fault.litmus is not None and fault.litmus.catalog.node_env is not None
        return TargetUnit.NODES if on_nodes else TargetUnit.PODS

    def node_targets(self, fault: Fault, pods: Sequence[Mapping[str, Any]]) -> list[str]:
        if fault.litmus is None:
            return distinct_nodes(pods)
        return litmus.target_nodes(pods, single=fault.litmus.catalog.single_node)

    def describe(self, fault: Fault) -> str:
        experiment = fault.litmus.experiment if fault.litmus else "?"
        return f"the LitmusChaos experiment {experiment}, run by Litmus through a ChaosEngine"

    def start_allowance(self) -> float:
        return start_timeout()

    # --- before anything is chosen ---------------------------------------------------------

    def preflight(self, ctx: InjectContext) -> None:
        assert ctx.fault.litmus is not None
        spec = ctx.fault.litmus
        missing = ctx.kube.missing_crds(litmus.CRDS)
        if missing:
            raise EngineError("LitmusNotInstalled", litmus.crds_install_hint(missing))
        ns = ctx.target_namespace
        installed = _get(ctx.kube, EXPERIMENTS, ns, spec.experiment)
        if installed is None:
            raise EngineError(
                "LitmusExperimentNotFound",
                f"the Litmus ChaosExperiment {spec.experiment} does not exist in namespace {ns}:"
                f" {litmus.experiment_install_hint(spec.experiment, ns)}; nothing was injected",
            )
        # version drift: a parameter the installed version does not define would be ignored
        undefined = litmus_params.undefined_parameters(installed, spec.env or {})
        if undefined:
            raise EngineError(
                litmus_params.UNDEFINED_REASON,
                litmus_params.undefined_message(spec.experiment, ns, undefined),
            )
        if not spec.provision_service_account and not ctx.kube.service_account_exists(
            ns, spec.service_account
        ):
            raise EngineError(
                "ChaosServiceAccountNotFound",
                f"the chaosServiceAccount {spec.chaos_service_account} does not exist in namespace {ns};"
                f" create it with the permissions {spec.experiment} needs (docs/litmus.md); nothing was injected",
            )

    # --- the engine ----------------------------------------------------------------------

    def request(self, ctx: InjectContext) -> litmus.EngineRequest:
        assert ctx.fault.litmus is not None and ctx.target is not None
        spec = ctx.fault.litmus
        duration = ctx.fault.duration_delta or dt.timedelta(seconds=30)
        pods = [t.name for t in ctx.targets if t.kind == "Pod"]
        nodes = [t.name for t in ctx.targets if t.kind == "Node"]
        owner = None
        if ctx.run_namespace == ctx.target_namespace:  # ownerReferences cannot cross namespaces
            owner = {
                "apiVersion": "aftershock.dev/v1alpha1",
                "kind": "ChaosRun",
                "name": ctx.run_name,
                "uid": ctx.run_uid,
                "blockOwnerDeletion": False,
            }
        return litmus.EngineRequest(
            name=self.engine_name(ctx),
            namespace=ctx.target_namespace,
            experiment=spec.experiment,
            env=dict(spec.env),
            duration_seconds=max(1, int(duration.total_seconds())),
            service_account=spec.service_account,
            app_kind=str(ctx.target.kind),
            # a label-selected experiment hits what carries the label: only the run's marked pods
            app_label=pod_marks.TARGET_MARK.selector(ctx.run_uid)
            if spec.catalog.label_selected
            else ctx.target.selector.to_query(),
            target_pods=pods,
            target_nodes=nodes,
            job_cleanup=str(spec.job_clean_up_policy),
            probes=spec.probes,
            labels={
                LABEL_RUN: ctx.run_uid,
                LABEL_RUN_NAMESPACE: ctx.run_namespace,
                LABEL_RUN_NAME: label_value(ctx.run_name),
                MANAGED_BY: "aftershock",
            },
            owner=owner,
        )

    def engine_name(self, ctx: InjectContext) -> str:
        return litmus.engine_name(ctx.run_name, ctx.run_namespace, ctx.target_namespace)

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        """One engine for all targets: the first call creates it, later ones find it (409)."""
        assert ctx.fault.litmus is not None
        ns = ctx.target_namespace
        if ctx.fault.litmus.provision_service_account:
            for obj in litmus.provisioned_objects(ctx.fault.litmus.experiment, ns, PROVISIONED_LABELS):
                _provision(ctx.kube, obj)
        if ctx.fault.litmus.catalog.label_selected:  # marked before Litmus looks for them
            marked = pod_marks.TARGET_MARK.put_all(ctx.kube, ctx.targets, ctx.run_uid, ctx.run_namespace)
            if not marked:
                raise EngineError(
                    "TargetsGone",
                    "every chosen pod was gone or replaced before it could be marked for Litmus;"
                    " nothing was injected",
                )
        name = self.engine_name(ctx)
        manifest = litmus.engine_manifest(self.request(ctx))
        created = create_owned(
            lambda: ctx.kube.create_foreign(litmus.GROUP, litmus.VERSION, ENGINES, ns, manifest),
            lambda: _get(ctx.kube, ENGINES, ns, name),
            ctx.run_uid,
            f"a ChaosEngine named {name} in namespace {ns}",
        )
        if created:
            log.info(
                "run %s/%s: created ChaosEngine %s", ctx.run_namespace, ctx.run_name, self.engine_name(ctx)
            )
        return now()

    def displaces(self, fault: Fault) -> bool:
        """Litmus's node-drain evicts every pod of the node, and its node-taint (NoExecute unless
        TAINTS says otherwise) those not tolerating it: the same collateral rule as native ones."""
        return _displacing(fault)

    def displaced(self, fault: Fault, pods: Sequence[PodOnNode], run_uid: str) -> list[PodOnNode]:
        if fault.litmus is None:
            return []
        if fault.litmus.experiment == "node-drain":
            return displaced_by_drain(pods)
        if fault.litmus.experiment == "node-taint":
            key, value, effect = litmus_taint(fault.litmus.env.get("TAINTS", ""))
            return displaced_by_taint(pods, key, effect, value)
        return []

    def tend(self, ctx: InjectContext) -> bool:
        return False

    def follow(self, ctx: InjectContext) -> Followed:
        assert ctx.fault.litmus is not None
        experiment = ctx.fault.litmus.experiment
        name = self.engine_name(ctx)
        engine = _get(ctx.kube, ENGINES, ctx.target_namespace, name)
        if engine is None:
            return Followed(
                done=True,
                errored=(
                    "LitmusEngineGone",
                    f"the ChaosEngine {name} disappeared before Litmus reported a verdict",
                ),
            )
        if not carries_run_label(engine, ctx.run_uid):  # ours was replaced: its verdict is not ours
            return Followed(
                done=True,
                errored=(
                    ARTIFACT_NAME_TAKEN,
                    f"the ChaosEngine {name} is no longer this run's (it lacks the label"
                    f" {LABEL_RUN}={ctx.run_uid}); it was left untouched",
                ),
            )
        result_name = litmus.result_name(name, experiment)
        result = _get(ctx.kube, RESULTS, ctx.target_namespace, result_name)
        p = litmus.progress(engine, result)
        details = {
            "result": result_name if result is not None else None,
            "probeSuccessPercentage": p.probe_success,
            "errorOutput": p.error,
        }
        record = EngineRecord(
            name=self.kind,
            object=name,
            verdict=p.verdict,
            phase=p.phase,
            details={key: value for key, value in details.items() if value is not None},
        )
        if p.state is litmus.State.WAITING:
            return Followed(
                done=False,
                waiting=True,
                record=record,
                not_taken_up=(
                    "LitmusNotResponding",
                    f"Litmus did not take up the ChaosEngine {name}; is the Litmus operator running?",
                ),
            )
        if p.state is litmus.State.RUNNING:
            return Followed(done=False, record=record, summary=p.detail)
        record = record.model_copy(update={"finished_at": now()})
        if p.state is litmus.State.NO_EXPERIMENT:
            return Followed(
                done=True,
                record=record,
                errored=(
                    "LitmusExperimentNotFound",
                    f"Litmus did not find the ChaosExperiment {experiment} in namespace {ctx.target_namespace}:"
                    f" {litmus.experiment_install_hint(experiment, ctx.target_namespace)}",
                ),
            )
        if p.state is litmus.State.STOPPED:
            return Followed(
                done=True,
                record=record,
                errored=("LitmusStopped", f"Litmus stopped the experiment {experiment} before it finished"),
            )
        read = litmus.reading(experiment, p)
        notes = tuple(
            Finding(severity=Severity(s), title=title, detail=detail) for s, title, detail in read.findings
        )
        errored = ("LitmusError", read.errored) if read.errored else None
        return Followed(
            done=True,
            record=record,
            findings=notes,
            errored=errored,
            summary=f"Litmus verdict {p.verdict} (probe success {p.probe_success or '-'}%)",
        )

    # --- abort and clean up --------------------------------------------------------------

    def revert(self, ctx: InjectContext) -> Sequence[Finding]:
        """Stop (merge patch), wait a bounded time, delete the engine and its result; remove
        Litmus's finalizer only when Litmus evidently is not running. Idempotent."""
        assert ctx.fault.litmus is not None
        kube = ctx.kube
        ns = ctx.target_namespace
        name = self.engine_name(ctx)
        result_name = litmus.result_name(name, ctx.fault.litmus.experiment)
        notes: list[Finding] = []
        engine = _own(_get(kube, ENGINES, ns, name), ctx.run_uid)
        stop_seconds, delete_seconds = stop_wait(), delete_wait()
        if ctx.urgent:  # an abort: the kill-switch promise bounds what Litmus is waited for
            stop_seconds = min(stop_seconds, ABORT_WAIT_SECONDS * 0.6)
            delete_seconds = min(delete_seconds, ABORT_WAIT_SECONDS - stop_seconds)
        stop_confirmed = True
        if engine is not None and _taken_up(engine) and _running(engine):
            if (engine.get("spec") or {}).get("engineState") != "stop":
                kube.merge_patch_foreign(
                    litmus.GROUP, litmus.VERSION, ENGINES, ns, name, {"spec": {"engineState": "stop"}}
                )
            stop_confirmed = _wait(
                lambda: _settled(_own(_get(kube, ENGINES, ns, name), ctx.run_uid)), stop_seconds
            )
        engine = _own(_get(kube, ENGINES, ns, name), ctx.run_uid)
        if engine is not None:
            uid = engine["metadata"].get("uid")
            kube.delete_foreign(litmus.GROUP, litmus.VERSION, ENGINES, ns, name, uid=uid)
            gone = _wait(lambda: _own(_get(kube, ENGINES, ns, name), ctx.run_uid) is None, delete_seconds)
            if not gone and ctx.urgent and stop_confirmed:
                # Litmus is alive (it confirmed the stop) and finishing its own cleanup under its
                # finalizer: leave it that; the sweeper checks the engine is gone later
                notes.append(
                    Finding(
                        severity=Severity.LOW,
                        title="Litmus still cleaning up",
                        detail=f"the run was aborted; Litmus confirmed the stop of ChaosEngine {ns}/{name}"
                        f" and is finishing its deletion (its finalizer {litmus.FINALIZER})",
                    )
                )
            elif not gone:
                notes += self._release_stuck(kube, ns, name, stop_confirmed, ctx.run_uid, uid)
        result = _get(kube, RESULTS, ns, result_name)
        if result is not None and _result_ours(result, engine, ctx.run_uid):
            uid = result["metadata"].get("uid")
            kube.delete_foreign(litmus.GROUP, litmus.VERSION, RESULTS, ns, result_name, uid=uid)
        if ctx.fault.litmus.catalog.label_selected:
            pod_marks.TARGET_MARK.remove_run(kube, ctx.run_uid, ns)  # after the engine: Litmus has let go
        return notes

    def _release_stuck(
        self, kube: Kube, ns: str, name: str, stop_confirmed: bool, run_uid: str, engine_uid: str | None
    ) -> list[Finding]:
        leftovers = _litmus_pods(kube, ns, engine_uid)  # before the engine's pods are collected
        for _ in range(5):
            engine = _own(_get(kube, ENGINES, ns, name), run_uid)
            if engine is None:
                return []
            try:
                removed = kube.drop_foreign_finalizer(
                    litmus.GROUP, litmus.VERSION, ENGINES, engine, litmus.FINALIZER
                )
            except Conflict:
                continue
            if not removed:
                others = (engine.get("metadata") or {}).get("finalizers") or []
                raise RuntimeError(f"ChaosEngine {ns}/{name} is held by finalizers {others}, not Litmus's")
            why = (
                f"the Litmus operator did not {'confirm engineState stop nor ' if not stop_confirmed else ''}"
                f"process the deletion of ChaosEngine {ns}/{name} in the time it was given, so it is evidently"
                f" not running; aftershock removed Litmus's finalizer {litmus.FINALIZER}. "
                + (
                    f"Litmus's pods of this engine, which aftershock cannot label and leaves alone: {', '.join(leftovers)}"
                    f" (kubectl get pods,jobs -n {ns} -l {litmus.UID_LABEL}={engine_uid})"
                    if leftovers
                    else f"No pod of this engine was left (label {litmus.UID_LABEL}={engine_uid}); check its Jobs"
                    f" with kubectl get jobs -n {ns} -l {litmus.UID_LABEL}={engine_uid}"
                )
            )
            log.warning("%s", why)
            return [Finding(severity=Severity.LOW, title="Litmus finalizer removed", detail=why)]
        raise Conflict(f"ChaosEngine {ns}/{name} kept changing while its finalizer was removed")


def _running(engine: Mapping[str, Any]) -> bool:
    return ((engine.get("status") or {}).get("engineStatus")) not in ("completed", "stopped")


def _taken_up(engine: Mapping[str, Any]) -> bool:
    """Litmus has initialised it (an engine it never saw has nothing running to stop)."""
    return bool((engine.get("status") or {}).get("engineStatus"))


def _settled(engine: Mapping[str, Any] | None) -> bool:
    return engine is None or not _running(engine)


def _own(obj: Obj | None, run_uid: str) -> Obj | None:
    """`obj` when it carries the run's label; None (leave it alone) otherwise."""
    return obj if carries_run_label(obj, run_uid) else None


def _result_ours(result: Mapping[str, Any], engine: Mapping[str, Any] | None, run_uid: str) -> bool:
    """Delete a result only when it speaks for the run: it carries the run's label (Litmus copies
    the engine's labels onto it), or its chaosUID is the uid of the run's own engine (Litmus
    leaves out the labels of a stopped experiment). Never someone else's result of that name."""
    if carries_run_label(result, run_uid):
        return True
    uid = ((result.get("metadata") or {}).get("labels") or {}).get(litmus.UID_LABEL)
    return engine is not None and uid is not None and uid == (engine.get("metadata") or {}).get("uid")


def _provision(kube: Kube, obj: Obj) -> None:
    """Create one of the shared, provisioned RBAC objects; an existing one is reused only when
    aftershock made it (its author would otherwise choose what Litmus may do in our name), and a
    Role an earlier version made gets today's rules (an upgrade mends what that version lacked)."""
    meta = obj["metadata"]
    if kube.create_object(obj):
        return
    existing = kube.find_object(obj["kind"], meta["namespace"], meta["name"])
    labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
    if existing is not None and labels.get(MANAGED_BY) != "aftershock":
        raise EngineError(
            ARTIFACT_NAME_TAKEN,
            f"a {obj['kind']} named {meta['name']} already exists in namespace {meta['namespace']} and was"
            f" not made by aftershock (it lacks the label {MANAGED_BY}=aftershock): it was left untouched"
            " and the fault was not injected; remove it, or name a chaosServiceAccount instead of"
            " provisionServiceAccount",
        )
    if existing is not None and obj["kind"] == "Role" and litmus.rules_differ(existing, obj):
        kube.update_role_rules(existing, obj["rules"])


def _litmus_pods(kube: Kube, namespace: str, engine_uid: str | None) -> list[str]:
    """Names of the pods Litmus made for one engine (its runner, experiment and helpers carry the
    engine's uid as chaosUID), for a finding; [] when that cannot be told."""
    if not engine_uid:
        return []
    try:
        pods = kube.list_pods(namespace, f"{litmus.UID_LABEL}={engine_uid}")
    except Exception:  # a finding's detail must not fail the revert
        return []
    return sorted(str(p["metadata"]["name"]) for p in pods)


def _wait(condition: Any, seconds: float, poll: float = 0.5) -> bool:
    give_up = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= give_up:
            return False
        time.sleep(poll)


def _displacing(fault: Fault) -> bool:
    if fault.litmus is None:
        return False
    if fault.litmus.experiment == "node-drain":
        return True
    if fault.litmus.experiment == "node-taint":
        return litmus_taint(fault.litmus.env.get("TAINTS", ""))[2] == "NoExecute"
    return False
