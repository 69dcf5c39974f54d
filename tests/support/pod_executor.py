"""A pod-process executor for the test cluster: real programs for the pods that kwok only pretends to run.

On the local cluster no container ever runs. For pods that must really do something — LitmusChaos's
chaos-runner and experiment pods — kwok is told to leave them alone (its pod-ready stage skips the
label app.kubernetes.io/part-of=litmus, hack/kwok/stages.yaml.tmpl), and `PodExecutor` plays the
kubelet for them:

- one watch on the pods with that label, all namespaces;
- for each pod bound to a node, the program its container would run (`programs(pod)`, e.g. the
  chaos-runner binary for the chaos-runner image) starts as a local process with the pod's
  environment — plain values, the downward API (`metadata.name` → POD_NAME, …), Secret and
  ConfigMap references — and a kubeconfig with a token of the pod's ServiceAccount, bound to the
  pod (a TokenRequest, as the kubelet mounts one): the program has exactly the permissions RBAC
  grants that account, and the token dies with the pod; the pod then reports Running;
- the process's exit becomes the pod's: phase Succeeded or Failed, a terminated container status
  with the exit code (restartPolicy is not honoured: one run per pod);
- deleting the pod stops the process (SIGTERM to its process group, SIGKILL after a grace).

One thread runs one asyncio loop for everything: the watch and status patches over aiohttp, each
process's end noticed through its pidfd. Each process writes to its own log file, which a test shows
when it fails (`report()`). Tests only; nothing here is part of the product.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import re
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from kubernetes import client, config

from tests.support.identity import token_kubeconfig

Body = dict[str, Any]
LITMUS_SELECTOR = "app.kubernetes.io/part-of=litmus"
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a pod goes


class NotRunnable(Exception):
    """The executor cannot run this pod's container; the pod ends Failed with this message."""


Programs = Callable[[Body, Path], Sequence[str]]
"""The command line to run for a pod (its first container), given the kubeconfig made for it; raises
NotRunnable when there is none."""
TOKEN_SECONDS = 3600


@dataclass
class Started:
    namespace: str
    name: str
    argv: list[str]
    log: Path
    exit_code: int | None = None
    stopped: bool = False  # the pod was deleted while the process ran
    started_at: str = ""
    ended_at: str = ""
    node: str = ""  # the node the pod was bound to


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """A downward-API fieldRef of `pod`: metadata.name, metadata.labels['k'], spec.nodeName, …"""
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        return str(((pod.get("metadata") or {}).get(subscript[1]) or {}).get(subscript[2], ""))
    value: Any = pod
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


@dataclass
class _Api:
    """The few API calls the executor makes, on aiohttp with the kubeconfig's credentials."""

    session: aiohttp.ClientSession
    host: str
    headers: dict[str, str] = field(default_factory=dict)

    async def get(self, path: str, **params: str) -> Body | None:
        async with self.session.get(self.host + path, params=params, headers=self.headers) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            body: Body = await resp.json()
            return body

    async def token_for(self, pod: Body) -> str:
        """A token of the pod's ServiceAccount bound to the pod (TokenRequest)."""
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        url = f"{self.host}/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{quote(account)}/token"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        headers = {**self.headers, "Content-Type": "application/json"}
        async with self.session.post(url, data=json.dumps(request), headers=headers) as resp:
            if resp.status == 404:
                raise NotRunnable(f"ServiceAccount {account} not found (no token for the container)")
            resp.raise_for_status()
            body: Body = await resp.json()
            return str(body["status"]["token"])

    async def patch_status(self, namespace: str, name: str, status: Body) -> bool:
        """Merge-patch a pod's status; False when the pod is gone."""
        url = f"{self.host}/api/v1/namespaces/{namespace}/pods/{quote(name)}/status"
        headers = {**self.headers, "Content-Type": "application/merge-patch+json"}
        async with self.session.patch(url, data=json.dumps({"status": status}), headers=headers) as resp:
            if resp.status == 404:
                return False
            resp.raise_for_status()
            return True


def _connection(kubeconfig: Path) -> tuple[str, ssl.SSLContext | bool, dict[str, str]]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    headers = {}
    token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
    if token:
        headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
    if not cfg.verify_ssl:
        return cfg.host, False, headers
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    if cfg.cert_file:
        context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return cfg.host, context, headers


class PodExecutor:
    """Runs `programs(pod)` for the pods matching `selector`; see the module docstring."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        programs: Programs,
        *,
        selector: str = LITMUS_SELECTOR,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.programs = programs
        self.selector = selector
        self.base_env = dict(env or {})
        self.started: list[Started] = []
        self.errors: list[str] = []
        self._handled: set[str] = set()  # pod uids taken up (never run a pod twice)
        self._running: dict[str, tuple[subprocess.Popen[bytes], Started]] = {}
        self._gone: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._api: _Api | None = None

    # --- lifecycle (called from the test's thread) -----------------------------------------------

    def start(self) -> PodExecutor:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="pod-executor")
        self._thread.daemon = True
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"the pod executor did not list pods in 30 s: {self.errors}")
        return self

    def stop(self) -> None:
        """Stop every process (as if its pod went) and the watch."""
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=KILL_GRACE + 10)

    def __enter__(self) -> PodExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def report(self, since: int = 0, tail: int = 60, namespace: str | None = None) -> str:
        """The command lines, exit codes and last log lines of the processes started since `since`
        (an index into `started`), or of those in `namespace`: what a failing test shows."""
        parts = []
        for run in self.started[since:]:
            if namespace is not None and run.namespace != namespace:
                continue
            text = run.log.read_text(errors="replace") if run.log.exists() else ""
            lines = "\n".join(text.splitlines()[-tail:])
            end = "stopped (pod deleted)" if run.stopped else f"exit {run.exit_code}"
            when = f"{run.started_at} .. {run.ended_at or 'running'}"
            parts.append(
                f"--- pod {run.namespace}/{run.name} ({when}): {' '.join(run.argv)} -> {end}\n{lines}"
            )
        if self.errors:
            parts.append("--- executor errors:\n" + "\n".join(self.errors))
        return "\n".join(parts)

    # --- the loop --------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        host, context, headers = _connection(self.kubeconfig)
        connector = aiohttp.TCPConnector(ssl=context)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as s:
            self._api = _Api(s, host, headers)
            watcher = asyncio.create_task(self._watch())
            await self._stopping.wait()
            watcher.cancel()
            for uid in list(self._running):
                self._terminate(uid)
            deadline = time.monotonic() + KILL_GRACE + 2
            while self._running and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            for task in list(self._tasks):
                task.cancel()
        self._ready.set()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self) -> None:
        """List, then watch from the list's resourceVersion; list again when the watch expires."""
        assert self._api is not None
        api = self._api
        version: str | None = None
        while True:
            try:
                if version is None:
                    listing = await api.get("/api/v1/pods", labelSelector=self.selector)
                    assert listing is not None
                    version = listing["metadata"]["resourceVersion"]
                    present = {p["metadata"]["uid"] for p in listing["items"]}
                    for uid in set(self._running) - present:  # went while the watch was down
                        self._on_gone(uid)
                    for pod in listing["items"]:
                        self._on_pod("ADDED", pod)
                    self._ready.set()
                version = await self._stream(version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors.append(f"watch: {exc!r}")
                version = None
                await asyncio.sleep(0.5)

    async def _stream(self, version: str) -> str | None:
        """Follow one watch request; the version to resume from, or None to list again."""
        assert self._api is not None
        params = {
            "labelSelector": self.selector,
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        api = self._api
        async with api.session.get(f"{api.host}/api/v1/pods", params=params, headers=api.headers) as resp:
            resp.raise_for_status()
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event["type"] == "ERROR":  # e.g. 410 Gone: the version is too old
                        return None
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._on_pod(event["type"], obj)
        return version

    def _on_pod(self, kind: str, pod: Body) -> None:
        meta, status = pod["metadata"], pod.get("status") or {}
        uid = meta["uid"]
        if kind == "DELETED" or meta.get("deletionTimestamp"):
            self._on_gone(uid)
            return
        if uid in self._handled or not (pod.get("spec") or {}).get("nodeName"):
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        self._handled.add(uid)
        self._spawn(self._run(pod))

    def _on_gone(self, uid: str) -> None:
        self._gone.add(uid)
        self._handled.add(uid)
        self._terminate(uid)

    def _terminate(self, uid: str) -> None:
        entry = self._running.get(uid)
        if entry is None:
            return
        process, run = entry
        run.stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        assert self._loop is not None
        self._loop.call_later(KILL_GRACE, self._kill, process)

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    # --- one pod ---------------------------------------------------------------------------------

    async def _run(self, pod: Body) -> None:
        assert self._api is not None
        meta = pod["metadata"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        containers = pod["spec"]["containers"]
        try:
            kubeconfig = self.log_dir / f"{ns}.{name}.kubeconfig"
            token = await self._api.token_for(pod)
            kubeconfig.write_text(token_kubeconfig(self.kubeconfig.read_text(), f"{ns}.{name}", token))
            argv = list(self.programs(pod, kubeconfig))
            env = {
                **self.base_env,
                "KUBECONFIG": str(kubeconfig),
                **await self._environment(pod, containers[0]),
            }
        except NotRunnable as exc:
            await self._api.patch_status(ns, name, _terminated(containers, 127, str(exc), _now()))
            self.errors.append(f"pod {ns}/{name}: {exc}")
            return
        except Exception as exc:
            self.errors.append(f"pod {ns}/{name}: {exc!r}")
            await self._api.patch_status(ns, name, _terminated(containers, 126, repr(exc), _now()))
            return
        if uid in self._gone:
            return
        log = self.log_dir / f"{ns}.{name}.log"
        started_at = _now()
        run = Started(ns, name, argv, log, started_at=started_at, node=pod["spec"].get("nodeName", ""))
        self.started.append(run)
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=self.log_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops what it started
            )
        self._running[uid] = (process, run)
        exited = self._exit_of(process)
        if uid in self._gone:  # deleted while it was starting
            self._terminate(uid)
        try:
            if not await self._api.patch_status(ns, name, _running(containers, started_at)):
                self._on_gone(uid)
            code = await exited
        finally:
            self._running.pop(uid, None)
        run.exit_code, run.ended_at = code, _now()
        if uid not in self._gone:
            await self._api.patch_status(ns, name, _terminated(containers, code, None, started_at))

    def _exit_of(self, process: subprocess.Popen[bytes]) -> asyncio.Future[int]:
        """A future of the process's exit code, from its pidfd (no thread per process)."""
        assert self._loop is not None
        loop = self._loop
        future: asyncio.Future[int] = loop.create_future()
        pidfd = os.pidfd_open(process.pid)

        def readable() -> None:
            code = process.poll()
            if code is None:
                return
            loop.remove_reader(pidfd)
            os.close(pidfd)
            if not future.done():
                future.set_result(code if code >= 0 else 128 - code)

        loop.add_reader(pidfd, readable)
        readable()  # it may have ended already
        return future

    async def _environment(self, pod: Body, container: Body) -> dict[str, str]:
        """The container's environment as the kubelet would set it (no $(VAR) expansion)."""
        assert self._api is not None
        ns = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind, ref in (
                ("configmaps", source.get("configMapRef")),
                ("secrets", source.get("secretRef")),
            ):
                if ref:
                    for key, value in (await self._data(ns, kind, ref)).items():
                        env[prefix + key] = value
        for var in container.get("env") or []:
            name, source = var["name"], var.get("valueFrom")
            if source is None:
                env[name] = var.get("value", "")
            elif "fieldRef" in source:
                env[name] = field_value(pod, source["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in source or "secretKeyRef" in source:
                kind = "configmaps" if "configMapKeyRef" in source else "secrets"
                ref = source.get("configMapKeyRef") or source["secretKeyRef"]
                data = await self._data(ns, kind, ref)
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
            # resourceFieldRef: no resources are enforced here; left unset
        return env

    async def _data(self, namespace: str, kind: str, ref: Mapping[str, Any]) -> dict[str, str]:
        assert self._api is not None
        obj = await self._api.get(f"/api/v1/namespaces/{namespace}/{kind}/{quote(ref['name'])}")
        if obj is None:
            if ref.get("optional"):
                return {}
            raise NotRunnable(f"{kind} {ref['name']} not found (the kubelet would not start the container)")
        if kind == "secrets":
            return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        return dict(obj.get("data") or {})


def _container_statuses(containers: Sequence[Body], state: Body, ready: bool) -> list[Body]:
    return [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "ready": ready,
            "started": ready,
            "restartCount": 0,
            "state": state,
        }
        for c in containers
    ]


def _conditions(ready: bool, reason: str | None = None) -> list[Body]:
    now = _now()
    out = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
    ]
    for kind in ("ContainersReady", "Ready"):
        condition = {"type": kind, "status": "True" if ready else "False", "lastTransitionTime": now}
        if reason:
            condition["reason"] = reason
        out.append(condition)
    return out


def _running(containers: Sequence[Body], started_at: str) -> Body:
    return {
        "phase": "Running",
        "startTime": started_at,
        "conditions": _conditions(True),
        "containerStatuses": _container_statuses(containers, {"running": {"startedAt": started_at}}, True),
    }


def _terminated(containers: Sequence[Body], code: int, message: str | None, started_at: str) -> Body:
    terminated: Body = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": started_at,
        "finishedAt": _now(),
    }
    if message:
        terminated["message"] = message
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "conditions": _conditions(False, "PodCompleted" if code == 0 else "PodFailed"),
        "containerStatuses": _container_statuses(containers, {"terminated": terminated}, False),
        **({"message": message} if message else {}),
    }
