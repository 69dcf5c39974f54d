"""A simulator of LitmusChaos 3.x at the API level, for tests only.

Real Litmus cannot run on the test cluster (kwok simulates pods, no container ever runs), so
`LitmusSimulator` plays the parts of the Litmus chaos-operator, the chaos-runner and the experiment
pod by reading and writing ChaosEngines and ChaosResults the way they do:

- ChaosEngine `status.engineStatus`: "" → initialized → completed (Litmus also flips
  `spec.engineState` to stop on completion), or → stopped on an abort or a deletion.
- ChaosEngine `status.experiments[]`: {name, runner: <engine>-runner, experimentPod, status,
  verdict, lastUpdateTime}, status "Waiting for Job Creation" → "Running" → "Completed", or
  "ChaosExperiment Not Found" / "Forcefully Aborted".
- The finalizer `chaosengine.litmuschaos.io/finalizer`, added on initialisation only when
  metadata.finalizers is empty, kept on completion, removed on abort and deletion.
- ChaosResult `<engine>-<experiment>` (plus `-<INSTANCE_ID>`), no ownerReference and no
  finalizer, labelled with the engine's labels, `chaosUID: <engine uid>` and `name: <experiment>`;
  reused (history counters carried on) by the next engine of the same name.
- None of the kinds has a status subresource: status is written with a merge patch on the main
  resource.

Nothing here runs in production; the operator under test must not be able to tell it from Litmus
at the level of these objects.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "litmuschaos.io", "v1alpha1"
ENGINES, EXPERIMENTS, RESULTS = "chaosengines", "chaosexperiments", "chaosresults"
FINALIZER = "chaosengine.litmuschaos.io/finalizer"
DEFAULT_CHAOS_DURATION = 30.0  # seconds, Litmus's default TOTAL_CHAOS_DURATION

log = logging.getLogger(__name__)

Body = dict[str, Any]


class Outcome(enum.Enum):
    """How the simulated experiment ends."""

    PASS = "Pass"  # Completed / Pass, probeSuccessPercentage "100"
    FAIL_PROBES = "FailProbes"  # Completed_With_Probe_Failure / Fail, one probe passed, one failed
    ERROR = "Error"  # Error / Error with errorOutput
    HANG = "Hang"  # stays Running until stopped or deleted
    DEAD = "Dead"  # the Litmus operator is gone after initialising the engine: never reacts again


OutcomeRule = Callable[[Body], Outcome] | Outcome


def litmus_experiment(name: str) -> Body:
    """A minimal Litmus ChaosExperiment object, named like the fault it stands for (e.g. pod-delete)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosExperiment",
        "metadata": {"name": name, "labels": {"name": name, "app.kubernetes.io/part-of": "litmus"}},
        "description": {"message": f"{name} (test object for the Litmus simulator)"},
        "spec": {
            "definition": {
                "scope": "Namespaced",
                "image": "litmuschaos/go-runner:3.x",
                "labels": {"name": name},
                "permissions": [],
                "env": [],
            }
        },
    }


def release_engines(api: client.ApiClient, namespace: str) -> None:
    """Remove every finalizer from the ChaosEngines in `namespace` (what an admin does when Litmus is gone).

    Without it a namespace holding an engine whose Litmus operator has stopped stays Terminating.
    """
    objects = client.CustomObjectsApi(api)
    try:
        engines = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, ENGINES)["items"]
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    for engine in engines:
        if engine["metadata"].get("finalizers"):
            try:
                objects.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    ENGINES,
                    engine["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _env(engine: Body) -> dict[str, str]:
    """The env of the engine's first experiment (spec.experiments[0].spec.components.env) as a dict."""
    experiments = (engine.get("spec") or {}).get("experiments") or [{}]
    components = ((experiments[0].get("spec") or {}).get("components")) or {}
    return {e["name"]: str(e.get("value", "")) for e in components.get("env") or [] if "name" in e}


def _experiment_name(engine: Body) -> str:
    experiments = (engine.get("spec") or {}).get("experiments") or [{}]
    return str(experiments[0].get("name") or "")


def _chaos_seconds(engine: Body) -> float:
    try:
        return float(_env(engine).get("TOTAL_CHAOS_DURATION") or DEFAULT_CHAOS_DURATION)
    except ValueError:
        return DEFAULT_CHAOS_DURATION


@dataclass
class _Run:
    """What the simulator remembers about one engine (by uid)."""

    name: str
    experiment: str
    pod: str = ""  # the simulated experiment pod, <experiment>-<6 chars>
    started_at: float | None = None  # monotonic time the experiment began (result Running)
    running_reported: bool = False  # the engine's entry says Running
    verdict: str | None = None  # the experiment is over (result final) with this verdict
    dead: bool = False  # DEAD: never react to this engine again

    @classmethod
    def of(cls, engine: Body) -> _Run:
        experiment = _experiment_name(engine)
        return cls(engine["metadata"]["name"], experiment, f"{experiment}-{secrets.token_hex(3)}")

    def entry(self, *, pod: str, status: str, verdict: str) -> Body:
        """This engine's status.experiments[] entry, as the runner writes it."""
        return {
            "name": self.experiment,
            "runner": f"{self.name}-runner",
            "experimentPod": pod,
            "status": status,
            "verdict": verdict,
            "lastUpdateTime": _now(),
        }


class LitmusSimulator:
    """Plays the Litmus 3.x chaos-operator, chaos-runner and experiment pod at the API level, for tests only.

    A daemon thread polls the ChaosEngines in `namespace` about every 0.2 s and drives each one
    through Litmus's states; `outcome` (an Outcome, or a function of the engine object returning
    one) decides how its experiment ends. It is asked on every pass, so `set_outcome` also applies
    to engines already running (e.g. to release a HANG engine, or to make Litmus die mid-run with
    DEAD). A chaos second of TOTAL_CHAOS_DURATION lasts `seconds_per_chaos_second` real seconds.
    """

    interval = 0.2

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        outcome: OutcomeRule = Outcome.PASS,
        seconds_per_chaos_second: float = 0.05,
    ) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.seconds_per_chaos_second = seconds_per_chaos_second
        self.seen: dict[str, str] = {}  # uid → name of every engine ever observed
        # polling passes completed (paused ones included): a test that waits for `ticks` to grow by
        # two knows the simulator has looked at the current state, or would have if not paused
        self.ticks = 0
        self.errors: list[BaseException] = []  # unexpected errors of the polling thread, for debugging
        self._outcome: OutcomeRule = outcome
        self._runs: dict[str, _Run] = {}
        self._stopping = threading.Event()
        self._paused = False
        self._lock = threading.Lock()  # held for a whole pass: pause() returns between passes
        self._thread = threading.Thread(target=self._loop, name=f"litmus-simulator-{namespace}", daemon=True)

    # --- control -------------------------------------------------------------------------------

    def set_outcome(self, outcome: OutcomeRule) -> None:
        self._outcome = outcome

    def start(self) -> LitmusSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def pause(self) -> None:
        """Stop reacting (after the pass in progress) until resume(); what it knows is kept."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def __enter__(self) -> LitmusSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the polling loop ----------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if not self._paused:
                    try:
                        self._pass()
                    except Exception as exc:  # keep simulating; the next pass retries
                        log.exception("litmus simulator pass failed")
                        self.errors.append(exc)
                self.ticks += 1
            self._stopping.wait(self.interval)

    def _pass(self) -> None:
        try:
            engines = self.objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, ENGINES)[
                "items"
            ]
        except ApiException as exc:
            if exc.status == 404:  # the CRD is not installed (yet, or any more)
                return
            raise
        present: set[str] = set()
        for engine in engines:
            uid = engine["metadata"]["uid"]
            present.add(uid)
            self.seen.setdefault(uid, engine["metadata"]["name"])
            try:
                self._drive(engine)
            except ApiException as exc:
                if exc.status not in (404, 409):  # 404: gone; 409: changed under us, the next pass decides
                    log.exception("litmus simulator: engine %s", engine["metadata"]["name"])
                    self.errors.append(exc)
            except Exception as exc:  # one broken engine must not stop the others
                log.exception("litmus simulator: engine %s", engine["metadata"]["name"])
                self.errors.append(exc)
        for uid in list(self._runs):
            if uid not in present:
                del self._runs[uid]

    def _outcome_for(self, engine: Body) -> Outcome:
        rule = self._outcome
        return rule if isinstance(rule, Outcome) else rule(engine)

    # --- one engine ----------------------------------------------------------------------------

    def _drive(self, engine: Body) -> None:
        meta = engine["metadata"]
        run = self._runs.get(meta["uid"])
        if run is None:
            run = self._runs[meta["uid"]] = _Run.of(engine)
        if run.dead:
            return
        engine_status = (engine.get("status") or {}).get("engineStatus") or ""
        state = (engine.get("spec") or {}).get("engineState") or "active"

        if meta.get("deletionTimestamp") or (state == "stop" and engine_status != "completed"):
            # deletion, or a user abort (stop + completed is the normal end: nothing to do)
            if engine_status != "stopped" or self._without_finalizer(engine) is not None:
                self._abort(engine, run)
        elif engine_status == "":
            self._initialize(engine, run)
            if self._outcome_for(engine) is Outcome.DEAD:
                run.dead = True
        elif self._outcome_for(engine) is Outcome.DEAD:
            run.dead = True
        elif engine_status == "initialized":
            if run.verdict is not None:
                self._complete(engine, run)  # the result is final; an earlier engine write was refused
            elif run.started_at is None:
                self._start(engine, run)
            elif not run.running_reported:
                self._report_running(engine, run)
            elif time.monotonic() - run.started_at >= _chaos_seconds(engine) * self.seconds_per_chaos_second:
                self._finish(engine, run, self._outcome_for(engine))
        elif engine_status in ("completed", "stopped"):
            # engineState set to active again after the end: Litmus restarts the engine from scratch
            run = self._runs[meta["uid"]] = _Run.of(engine)
            self._initialize(engine, run)

    def _patch_engine(self, engine: Body, body: Body) -> None:
        """A merge patch on the main resource (no status subresource), guarded by the read resourceVersion.

        A 409 means the engine changed since it was read: the decision is stale, and the next
        pass (0.2 s later) decides again from the fresh object.
        """
        body.setdefault("metadata", {})["resourceVersion"] = engine["metadata"]["resourceVersion"]
        self.objects.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, ENGINES, engine["metadata"]["name"], body
        )

    def _initialize(self, engine: Body, run: _Run) -> None:
        """The chaos-operator's initEngine and the runner's first write."""
        entry = run.entry(pod="Yet to be launched", status="Waiting for Job Creation", verdict="N/A")
        body: Body = {"status": {"engineStatus": "initialized", "experiments": [entry]}}
        if not engine["metadata"].get("finalizers"):  # Litmus adds its finalizer only to an empty list
            body["metadata"] = {"finalizers": [FINALIZER]}
        self._patch_engine(engine, body)

    def _experiment_exists(self, name: str) -> bool:
        try:
            self.objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, EXPERIMENTS, name)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def _start(self, engine: Body, run: _Run) -> None:
        """The runner launches the experiment job; the experiment marks its result Running."""
        if not run.experiment or not self._experiment_exists(run.experiment):
            entry = run.entry(pod="N/A", status="ChaosExperiment Not Found", verdict="Fail")
            self._patch_engine(
                engine,
                {
                    "spec": {"engineState": "stop"},
                    "status": {"engineStatus": "completed", "experiments": [entry]},
                },
            )
            return
        self._result_running(engine, run)
        run.started_at = time.monotonic()
        if run.experiment == "pod-delete":
            self._delete_target_pods(engine)
        self._report_running(engine, run)

    def _report_running(self, engine: Body, run: _Run) -> None:
        entry = run.entry(pod=run.pod, status="Running", verdict="Awaited")
        self._patch_engine(engine, {"status": {"experiments": [entry]}})
        run.running_reported = True

    def _delete_target_pods(self, engine: Body) -> None:
        """pod-delete's effect: the pods named in TARGET_PODS go at once (FORCE: grace period 0)."""
        appinfo = (engine.get("spec") or {}).get("appinfo") or {}
        namespace = appinfo.get("appns") or self.namespace
        for pod in (_env(engine).get("TARGET_PODS") or "").split(","):
            if not pod.strip():
                continue
            try:
                self.core.delete_namespaced_pod(pod.strip(), namespace, grace_period_seconds=0)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def _finish(self, engine: Body, run: _Run, outcome: Outcome) -> None:
        """The experiment ends (EOT) and writes its verdict; then the engine completes."""
        if outcome is Outcome.HANG:
            return
        run.verdict = self._result_final(engine, run, outcome)
        self._complete(engine, run)

    def _complete(self, engine: Body, run: _Run) -> None:
        """The runner copies the verdict; the operator sees the runner end and stops the engine itself."""
        entry = run.entry(pod=run.pod, status="Completed", verdict=run.verdict or "")
        self._patch_engine(
            engine,
            {
                "spec": {"engineState": "stop"},
                "status": {"engineStatus": "completed", "experiments": [entry]},
            },
        )

    def _stopped_status(self, engine: Body, run: _Run) -> Body:
        """The operator's abort: the experiment pod is killed (its result says Stopped), entries aborted."""
        if run.started_at is not None and run.verdict is None:
            self._result_stopped(engine, run)
            run.verdict = "Stopped"
        entries = []
        for entry in (engine.get("status") or {}).get("experiments") or []:
            if entry.get("status") in ("Running", "Waiting for Job Creation"):
                entry = {
                    **entry,
                    "status": "Forcefully Aborted",
                    "verdict": "Stopped",
                    "lastUpdateTime": _now(),
                }
            entries.append(entry)
        return {"engineStatus": "stopped", "experiments": entries}

    def _without_finalizer(self, engine: Body) -> list[str] | None:
        """The finalizers minus Litmus's, or None when Litmus's is not there."""
        finalizers = list(engine["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            return None
        return [f for f in finalizers if f != FINALIZER]

    def _abort(self, engine: Body, run: _Run) -> None:
        """reconcileForDelete, for an abort or a deletion: kill the experiment, drop Litmus's finalizer
        (other finalizers stay), mark running entries aborted, engineStatus stopped; one merge patch."""
        body: Body = {"status": self._stopped_status(engine, run)}
        finalizers = self._without_finalizer(engine)
        if finalizers is not None:
            body["metadata"] = {"finalizers": finalizers}
        self._patch_engine(engine, body)

    # --- the ChaosResult -----------------------------------------------------------------------

    def _result_name(self, engine: Body, run: _Run) -> str:
        instance = _env(engine).get("INSTANCE_ID")
        return f"{run.name}-{run.experiment}" + (f"-{instance}" if instance else "")

    def _get_result(self, name: str) -> Body | None:
        try:
            result: Body = self.objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, RESULTS, name
            )
            return result
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _result_running(self, engine: Body, run: _Run) -> None:
        """SOT: create the result, or take over the one a previous engine of this name left."""
        name = self._result_name(engine, run)
        labels = {
            **(engine["metadata"].get("labels") or {}),
            "chaosUID": engine["metadata"]["uid"],
            "name": run.experiment,
        }
        spec = {"engine": run.name, "experiment": run.experiment}
        experiment_status = {"phase": "Running", "verdict": "Awaited", "probeSuccessPercentage": "Awaited"}
        existing = self._get_result(name)
        if existing is None:
            body: Body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ChaosResult",
                "metadata": {"name": name, "labels": labels},
                "spec": spec,
                "status": {
                    "experimentStatus": experiment_status,
                    "history": {"passedRuns": 0, "failedRuns": 0, "stoppedRuns": 0},
                },
            }
            try:
                self.objects.create_namespaced_custom_object(GROUP, VERSION, self.namespace, RESULTS, body)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
                existing = self._get_result(name)
                if existing is None:
                    raise
        # labels are replaced, not merged (the experiment writes its own label map every time)
        old_labels = existing["metadata"].get("labels") or {}
        patch_labels: dict[str, str | None] = {key: None for key in old_labels if key not in labels}
        patch_labels.update(labels)
        history = (existing.get("status") or {}).get("history") or {}
        self.objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            RESULTS,
            name,
            {
                "metadata": {"labels": patch_labels},
                "spec": spec,
                "status": {
                    "experimentStatus": {**experiment_status, "errorOutput": None},
                    "probeStatuses": None,
                    "history": {
                        "passedRuns": int(history.get("passedRuns", 0)),
                        "failedRuns": int(history.get("failedRuns", 0)),
                        "stoppedRuns": int(history.get("stoppedRuns", 0)),
                    },
                },
            },
        )

    def _patch_result(
        self, engine: Body, run: _Run, experiment_status: Body, counter: str | None, extra: Body
    ) -> None:
        name = self._result_name(engine, run)
        existing = self._get_result(name)
        if existing is None:  # someone removed it mid-run: write it again, as the experiment would
            self._result_running(engine, run)
            existing = self._get_result(name) or {}
        history = dict((existing.get("status") or {}).get("history") or {})
        for key in ("passedRuns", "failedRuns", "stoppedRuns"):
            history[key] = int(history.get(key, 0))
        if counter:
            history[counter] += 1
        self.objects.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            RESULTS,
            name,
            {"status": {"experimentStatus": experiment_status, "history": history, **extra}},
        )

    def _result_final(self, engine: Body, run: _Run, outcome: Outcome) -> str:
        """EOT: the verdict of `outcome` into the result; returns the verdict."""
        if outcome is Outcome.FAIL_PROBES:
            probes = [
                {
                    "name": "steady-state-http",
                    "type": "httpProbe",
                    "mode": "Continuous",
                    "status": {"verdict": "Passed", "description": "Probe passed"},
                },
                {
                    "name": "steady-state-cmd",
                    "type": "cmdProbe",
                    "mode": "Edge",
                    "status": {
                        "verdict": "Failed",
                        "description": "Probe failed: actual value did not match",
                    },
                },
            ]
            status: Body = {
                "phase": "Completed_With_Probe_Failure",
                "verdict": "Fail",
                "probeSuccessPercentage": "50",
            }
            self._patch_result(engine, run, status, "failedRuns", {"probeStatuses": probes})
            return "Fail"
        if outcome is Outcome.ERROR:
            status = {
                "phase": "Error",
                "verdict": "Error",
                "probeSuccessPercentage": "0",
                "errorOutput": {
                    "errorCode": "TARGET_SELECTION_ERROR",
                    "reason": "[no target pods found: simulated by the Litmus simulator]",
                },
            }
            self._patch_result(engine, run, status, None, {})
            return "Error"
        status = {"phase": "Completed", "verdict": "Pass", "probeSuccessPercentage": "100"}
        self._patch_result(engine, run, status, "passedRuns", {})
        return "Pass"

    def _result_stopped(self, engine: Body, run: _Run) -> None:
        status = {"phase": "Stopped", "verdict": "Stopped", "probeSuccessPercentage": "0"}
        self._patch_result(engine, run, status, "stoppedRuns", {})
