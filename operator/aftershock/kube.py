"""All Kubernetes API I/O of the operator, in one place.

Handlers and engines call these methods and never the client directly, so the rules that keep a
chaos tool safe live here once: 409 on create means "already done", 404 on delete means "already
gone", deletes carry a UID precondition so a same-named replacement is never hit, and status
writes can carry a resourceVersion precondition so two operators never both claim a run.

"Not found", one convention by name:

- `get*` returns the object or raises NotFound; `find*` returns it or None; `*_exists` answers
  yes or no; `list*` returns [] when nothing matches (for another project's kinds also when the
  kind is not installed).
- `create*` is falsy when an object of that name exists already (409, the work is already done):
  `create` returns the new object or None, the others True or False. Whether an existing object of
  an artifact's name is really the run's own is the caller's question (engines/base.py
  `create_owned`: only when it carries the run's label; a tenant may have made it).
- Deletes and the writes that undo or clean up (`delete*`, `remove_finalizer`,
  `drop_foreign_finalizer`, `patch_pod_labels`, `merge_patch_foreign`) are idempotent: an object
  that is gone (or, under a UID precondition, replaced) is no error; they tell whether this call
  changed it (True, or the patched object) or found nothing to change (False, None).
- Every other write (`patch_status`, `patch_spec`, `patch_lease`, `replace_policy`,
  `scale_deployment`) raises NotFound when the object is gone and Conflict when its
  resourceVersion precondition failed.

Transient errors, one policy (`call_with_backoff`): 429 (after at least its Retry-After), 500,
502, 503, 504, timeouts and connection errors are retried with jittered exponential backoff
(core/backoff.py) until the call's budget (`RetryPolicy.budget`, 30 s by default) is spent; then
the last error propagates. Other 4xx are answers and are never retried. Every attempt carries
connect and read timeouts, cut to what is left of the budget, so even a blackholed API server
ends a call within about the budget: with success once it answers again, or with its error.

A request whose response was lost may have been carried out, so retrying a write must never
repeat a side effect. Every write here is safe to repeat:

- creates use deterministic names: the repeat answers 409, which is "already done" (a slot's
  ChaosRun or a run's ChaosEngine can never be made twice);
- deletes: the repeat answers 404, "already gone"; a UID precondition never hits a replacement;
- merge patches set labels, finalizer lists, spec or status to given values: twice is once;
- writes with a resourceVersion precondition: the repeat of a write that landed answers 409 and
  raises Conflict; callers re-read on Conflict and find their own write (the run journal does);
- a SubjectAccessReview creates nothing.

So after a lost response a create or delete may report "existed" or "already gone" (falsy) for
work this very call did; callers read falsy as "done", which is the safe reading. The one request
that is not idempotent, an Event (generateName), is repeated only when the server surely never
got it (429, connection refused, connect timeout).
"""

from __future__ import annotations

import copy
import datetime as dt
import http.client
import json
import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import urllib3.exceptions
from kubernetes import client, config, utils
from kubernetes.client.rest import ApiException

from aftershock import GROUP, VERSION
from aftershock.core.backoff import Backoff, parse_retry_after
from aftershock.core.watch_scope import Scope
from aftershock.metrics import API_REQUESTS, API_RETRIES

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PLURALS = {"ChaosExperiment": "chaosexperiments", "ChaosRun": "chaosruns", "ChaosPolicy": "chaospolicies"}
T = TypeVar("T")
Timeouts = tuple[float, float]
"""(connect, read) seconds for one request, as the client's `_request_timeout` takes them."""


class Conflict(Exception):
    """The object changed since it was read (resourceVersion precondition failed)."""


class NotFound(Exception):
    """The object does not exist (any more)."""


def forbidden(exc: BaseException) -> str | None:
    """The API server's message when `exc` is an RBAC denial (403), else None."""
    if isinstance(exc, ApiException) and exc.status == 403:
        try:
            return str(json.loads(exc.body or "{}").get("message") or exc.reason)
        except ValueError:
            return str(exc.reason)
    return None


def load_client(connections: int = 100) -> client.ApiClient:
    """In-cluster credentials when running in a pod, the kubeconfig ($KUBECONFIG) otherwise.

    urllib3's own retries are turned off: they would repeat a timed-out request up to three times
    with the full timeout each, outside the budget; `call_with_backoff` does all retrying. The
    connection pool holds as many connections as the operator has threads calling through it
    (runs, aborts, ticks, admission, handlers): a smaller pool discards connections and pays a
    TLS handshake for every call under load."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.retries = False
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- retrying transient errors -------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How long one API call may take, all attempts and waits included, and how attempts are
    spaced. Read timeout: a LIST of thousands of pods answers in a few seconds, a blackholed
    server never."""

    budget: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    backoff: Backoff = field(default_factory=Backoff)
    min_timeout: float = 1.0  # the shortest timeout a retry gets when little budget is left


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Transient:
    """A failure worth retrying. `unsent`: the request surely never reached the API server, so
    even a non-idempotent request may be repeated."""

    reason: str  # the metric label: 429, 500, 502, 503, 504, timeout, connection
    unsent: bool
    retry_after: str | None = None  # the Retry-After header, as sent


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def transient(exc: BaseException) -> Transient | None:
    """Whether `exc` is a transient failure, and which kind; None for answers (404, 409, 403, 422,
    ...) and programming errors, which are never retried."""
    if isinstance(exc, ApiException):
        if exc.status == 429:  # refused before any processing (API Priority and Fairness)
            return Transient("429", unsent=True, retry_after=_header(exc.headers, "Retry-After"))
        if exc.status in (500, 502, 503, 504):
            return Transient(str(exc.status), unsent=False)
        if exc.status == 0 and str(exc.reason).startswith("SSLError"):
            return Transient("connection", unsent=False)  # how the client wraps a TLS failure, e.g. a reset
        return None
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        inner = transient(exc.reason) if exc.reason is not None else None
        return inner or Transient("connection", unsent=False)
    if isinstance(exc, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
        return Transient("connection", unsent=True)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return Transient("timeout", unsent=True)
    if isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError):
        return Transient("timeout", unsent=False)
    if isinstance(
        exc,
        urllib3.exceptions.ProtocolError
        | urllib3.exceptions.ProxyError
        | urllib3.exceptions.SSLError
        | ConnectionError
        | http.client.HTTPException,
    ):
        return Transient("connection", unsent=False)
    return None


def call_with_backoff(
    attempt: Callable[[Timeouts], T],
    policy: RetryPolicy = DEFAULT_RETRY,
    *,
    idempotent: bool = True,
    what: str = "API request",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    draw: Callable[[], float] = random.random,
) -> T:
    """`attempt(timeouts)` until it returns, a non-transient error, or the budget is spent (then
    the last error propagates). A non-idempotent attempt is repeated only when the failed one
    surely never reached the server (see the module's docstring)."""
    start = clock()
    retry = 0
    while True:
        left = max(policy.budget - (clock() - start), policy.min_timeout)
        timeouts = (min(policy.connect_timeout, left), min(policy.read_timeout, left))
        try:
            return attempt(timeouts)
        except Exception as exc:
            problem = transient(exc)
            if problem is None or not (idempotent or problem.unsent):
                raise
            retry_after = parse_retry_after(problem.retry_after, now())
            delay = policy.backoff.delay(retry, draw(), retry_after)
            elapsed = clock() - start
            if elapsed + delay >= policy.budget:
                log.warning(
                    "%s failed (%s) %d time(s) within %.1f s, giving up: %s",
                    what,
                    problem.reason,
                    retry + 1,
                    elapsed,
                    _brief(exc),
                )
                raise
            API_RETRIES.labels(problem.reason).inc()
            log.debug(
                "%s failed (%s), retry %d in %.2f s: %s", what, problem.reason, retry + 1, delay, _brief(exc)
            )
            sleep(delay)
            retry += 1


def _brief(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def _api_message(exc: ApiException) -> str:
    """The Status message the API server gave with an error, else its code and reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or _brief(exc))
    except (ValueError, AttributeError):
        return _brief(exc)


class Kube:
    """A thin, typed facade over the client for what aftershock reads and writes. Every request
    goes through `_call`: timeouts and the retry policy (see the module's docstring)."""

    def __init__(self, api: client.ApiClient, retry: RetryPolicy = DEFAULT_RETRY) -> None:
        self.api = api
        self.retry = retry
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.events = client.EventsV1Api(api)
        self.networking = client.NetworkingV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.authz = client.AuthorizationV1Api(api)
        self.extensions = client.ApiextensionsV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)

    def api_endpoints(self) -> tuple[tuple[str, int], ...]:
        """Where this client reaches the API server (host, port), and in a pod the Service address
        Kubernetes injects: the endpoints probes must never reach unless named on their own."""
        found: list[tuple[str, int]] = []
        parts = urlsplit(str(self.api.configuration.host))
        if parts.hostname:
            found.append((parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)))
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
        if host and port and port.isdigit():
            found.append((host.lower(), int(port)))
        return tuple(dict.fromkeys(found))

    def with_retry(self, retry: RetryPolicy) -> Kube:
        """The same client under another retry policy, e.g. a short budget for a caller with a
        deadline of its own (the admission webhook answers within the API server's timeout)."""
        twin = copy.copy(self)
        twin.retry = retry
        return twin

    def _call(self, request: Callable[..., Any], *args: Any, idempotent: bool = True, **kwargs: Any) -> Any:
        what = getattr(request, "__name__", "API request")
        counted = API_REQUESTS.labels(what)

        def attempt(timeouts: Timeouts) -> Any:
            counted.inc()
            return request(*args, _request_timeout=timeouts, **kwargs)

        return call_with_backoff(
            attempt,
            self.retry,
            idempotent=idempotent,
            what=what,
        )

    def _plain(self, obj: object) -> Obj:
        return cast(Obj, self.api.sanitize_for_serialization(obj))

    # --- our own kinds -------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        try:
            return cast(
                Obj,
                self._call(
                    self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURALS[kind], name
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{kind} {namespace}/{name}") from exc
            raise

    def list_objects(self, kind: str, namespace: str, label_selector: str = "") -> list[Obj]:
        result = self._call(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURALS[kind],
            label_selector=label_selector,
        )
        return cast(list[Obj], result.get("items", []))

    def create(self, kind: str, namespace: str, body: Obj) -> Obj | None:
        """Create; None when an object of that name already exists (409: the work is already done)."""
        try:
            return cast(
                Obj,
                self._call(
                    self.custom.create_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    PLURALS[kind],
                    body,
                ),
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise

    def dry_run_create(self, kind: str, namespace: str, body: Obj) -> str:
        """Create with dryRun=All: admission (webhooks included) judges it, nothing is stored.
        Returns the response's Warning header; ApiException when refused."""
        _data, _status, headers = self._call(
            self.custom.create_namespaced_custom_object_with_http_info,
            GROUP,
            VERSION,
            namespace,
            PLURALS[kind],
            body,
            dry_run="All",
        )
        return str((headers or {}).get("Warning") or "")

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete; False when it was already gone."""
        try:
            self._call(
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURALS[kind],
                name,
                propagation_policy="Background",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> Obj:
        """Merge-patch the status subresource; with `resource_version`, only if nobody wrote since."""
        body: Obj = {"status": dict(status)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            return cast(
                Obj,
                self._call(
                    self.custom.patch_namespaced_custom_object_status,
                    GROUP,
                    VERSION,
                    namespace,
                    PLURALS[kind],
                    name,
                    body,
                ),
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(
                    f"{kind} {namespace}/{name} changed since resourceVersion {resource_version}"
                ) from exc
            if exc.status == 404:
                raise NotFound(f"{kind} {namespace}/{name}") from exc
            raise

    # --- workloads and pods --------------------------------------------------------------

    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[Obj]:
        listers = {
            "Deployment": self.apps.list_namespaced_deployment,
            "StatefulSet": self.apps.list_namespaced_stateful_set,
            "DaemonSet": self.apps.list_namespaced_daemon_set,
        }
        items = self._call(listers[kind], namespace, label_selector=label_selector).items
        return [self._plain(item) for item in items]

    def get_workload(self, kind: str, namespace: str, name: str) -> Obj:
        readers = {
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
            "ReplicaSet": self.apps.read_namespaced_replica_set,
        }
        try:
            return self._plain(self._call(readers[kind], name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{kind} {namespace}/{name}") from exc
            raise

    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]:
        items = self._call(
            self.apps.list_namespaced_replica_set, namespace, label_selector=label_selector
        ).items
        return [self._plain(item) for item in items]

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        items = self._call(self.core.list_namespaced_pod, namespace, label_selector=label_selector).items
        return [self._plain(item) for item in items]

    def delete_pod(self, namespace: str, name: str, uid: str, grace_period_seconds: int | None) -> bool:
        """Delete exactly this pod (UID precondition). False when it was already gone or replaced."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid), grace_period_seconds=grace_period_seconds
        )
        try:
            self._call(self.core.delete_namespaced_pod, name, namespace, body=options)
            return True
        except ApiException as exc:
            if exc.status in (404, 409):  # gone, or the name now belongs to a replacement
                return False
            raise

    def patch_pod_labels(
        self, namespace: str, name: str, uid: str | None, labels: dict[str, str | None]
    ) -> bool:
        """Merge labels into exactly this pod (a None value removes the label). False if it is gone."""
        body: Obj = {"metadata": {"labels": labels}}
        if uid:
            body["metadata"]["uid"] = uid  # precondition: never label a same-named replacement
        try:
            self._call(self.core.patch_namespaced_pod, name, namespace, body)
            return True
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise

    def list_pods_in(self, scope: Scope, label_selector: str) -> list[Obj]:
        """Pods in the scope's namespaces (None: the whole cluster)."""
        if scope is None:
            items = self._call(self.core.list_pod_for_all_namespaces, label_selector=label_selector).items
            return [self._plain(item) for item in items]
        return [pod for ns in scope for pod in self.list_pods(ns, label_selector)]

    # --- network policies ----------------------------------------------------------------

    def create_network_policy(self, namespace: str, body: Obj) -> bool:
        """Create; False when it already exists (409: injected before)."""
        try:
            self._call(self.networking.create_namespaced_network_policy, namespace, body)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    def find_network_policy(self, namespace: str, name: str) -> Obj | None:
        try:
            return self._plain(self._call(self.networking.read_namespaced_network_policy, name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_network_policies(self, label_selector: str, scope: Scope = None) -> list[Obj]:
        """NetworkPolicies in the scope's namespaces (None: the whole cluster)."""
        if scope is None:
            items = self._call(
                self.networking.list_network_policy_for_all_namespaces, label_selector=label_selector
            ).items
        else:
            items = [
                item
                for ns in scope
                for item in self._call(
                    self.networking.list_namespaced_network_policy, ns, label_selector=label_selector
                ).items
            ]
        return [self._plain(item) for item in items]

    def delete_network_policy(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete; already gone is fine (reverts must be idempotent): False then. With `uid`, exactly
        that object (UID precondition): a same-named replacement is never deleted (False)."""
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)) if uid else None
        try:
            self._call(self.networking.delete_namespaced_network_policy, name, namespace, body=options)
        except ApiException as exc:
            if exc.status == 404 or (uid and exc.status == 409):
                return False
            raise
        return True

    def list_in(self, kind: str, scope: Scope, label_selector: str = "") -> list[Obj]:
        """Our objects of one kind in the scope's namespaces (None: the whole cluster)."""
        return self._list_scoped(GROUP, VERSION, PLURALS[kind], scope, label_selector)

    def _list_scoped(
        self, group: str, version: str, plural: str, scope: Scope, label_selector: str
    ) -> list[Obj]:
        if scope is None:
            result = self._call(
                self.custom.list_cluster_custom_object, group, version, plural, label_selector=label_selector
            )
            return cast(list[Obj], result.get("items", []))
        return [
            item
            for ns in scope
            for item in self._call(
                self.custom.list_namespaced_custom_object,
                group,
                version,
                ns,
                plural,
                label_selector=label_selector,
            ).get("items", [])
        ]

    def remove_finalizer(self, kind: str, obj: Obj, finalizer: str) -> bool:
        """Remove one of our kinds' finalizers (see drop_foreign_finalizer)."""
        return self.drop_foreign_finalizer(GROUP, VERSION, PLURALS[kind], obj, finalizer)

    def patch_spec(
        self,
        kind: str,
        namespace: str,
        name: str,
        spec: Mapping[str, Any],
        annotations: Mapping[str, str] | None = None,
    ) -> Obj:
        """Merge `spec` (and `annotations`, in the same write) into the object."""
        body: dict[str, Any] = {"spec": dict(spec)}
        if annotations:
            body["metadata"] = {"annotations": dict(annotations)}
        try:
            return cast(
                Obj,
                self._call(
                    self.custom.patch_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    PLURALS[kind],
                    name,
                    body,
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{kind} {namespace}/{name}") from exc
            raise

    # --- policy inputs -------------------------------------------------------------------

    def list_policies(self) -> list[Obj]:
        result = self._call(self.custom.list_cluster_custom_object, GROUP, VERSION, PLURALS["ChaosPolicy"])
        return cast(list[Obj], result.get("items", []))

    def find_policy(self, name: str) -> Obj | None:
        try:
            return cast(
                Obj,
                self._call(
                    self.custom.get_cluster_custom_object, GROUP, VERSION, PLURALS["ChaosPolicy"], name
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_policy(self, body: Obj) -> bool:
        """Create; False when one of that name exists already (409)."""
        try:
            self._call(self.custom.create_cluster_custom_object, GROUP, VERSION, PLURALS["ChaosPolicy"], body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def replace_policy(self, current: Obj, metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
        """Replace labels, annotations and spec of the policy as read (resourceVersion precondition)."""
        meta = current["metadata"]
        body = {
            "apiVersion": current["apiVersion"],
            "kind": current["kind"],
            "metadata": {
                **meta,
                "labels": {**(meta.get("labels") or {}), **(metadata.get("labels") or {})},
                "annotations": {**(meta.get("annotations") or {}), **(metadata.get("annotations") or {})},
            },
            "spec": dict(spec),
        }
        try:
            self._call(
                self.custom.replace_cluster_custom_object,
                GROUP,
                VERSION,
                PLURALS["ChaosPolicy"],
                meta["name"],
                body,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"ChaosPolicy {meta['name']} changed since it was read") from exc
            if exc.status == 404:
                raise NotFound(f"ChaosPolicy {meta['name']}") from exc
            raise

    def delete_policy(self, name: str, uid: str) -> bool:
        """Delete exactly this policy (UID precondition); False when it was already gone or replaced."""
        try:
            self._call(
                self.custom.delete_cluster_custom_object,
                GROUP,
                VERSION,
                PLURALS["ChaosPolicy"],
                name,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
            return False
        return True

    # --- another project's kinds (LitmusChaos): merge patches only, never replaced ---------

    def missing_crds(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """Which of these CustomResourceDefinitions do not exist."""
        missing = []
        for name in names:
            try:
                self._call(self.extensions.read_custom_resource_definition, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                missing.append(name)
        return missing

    def find_foreign(self, group: str, version: str, plural: str, namespace: str, name: str) -> Obj | None:
        try:
            return cast(
                Obj,
                self._call(self.custom.get_namespaced_custom_object, group, version, namespace, plural, name),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_foreign(
        self, group: str, version: str, plural: str, scope: Scope, label_selector: str
    ) -> list[Obj]:
        """Objects of another project's kind in the scope's namespaces; [] when the kind is not
        installed (404)."""
        try:
            return self._list_scoped(group, version, plural, scope, label_selector)
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise

    def create_foreign(self, group: str, version: str, plural: str, namespace: str, body: Obj) -> bool:
        """Create; False when it exists already (409: created before, e.g. by a previous process)."""
        try:
            self._call(self.custom.create_namespaced_custom_object, group, version, namespace, plural, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def merge_patch_foreign(
        self, group: str, version: str, plural: str, namespace: str, name: str, body: Obj
    ) -> Obj | None:
        """JSON merge patch (only the fields given change); None when the object is gone."""
        try:
            return cast(
                Obj,
                self._call(
                    self.custom.patch_namespaced_custom_object,
                    group,
                    version,
                    namespace,
                    plural,
                    name,
                    body,
                    _content_type="application/merge-patch+json",
                ),
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def delete_foreign(
        self, group: str, version: str, plural: str, namespace: str, name: str, uid: str | None = None
    ) -> bool:
        """Delete; False when it was already gone. With `uid`, exactly that object (UID
        precondition): a same-named replacement is never deleted (False)."""
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)) if uid else None
        try:
            self._call(
                self.custom.delete_namespaced_custom_object,
                group,
                version,
                namespace,
                plural,
                name,
                propagation_policy="Background",
                body=options,
            )
        except ApiException as exc:
            if exc.status == 404 or (uid and exc.status == 409):
                return False
            raise
        return True

    def drop_foreign_finalizer(self, group: str, version: str, plural: str, obj: Obj, finalizer: str) -> bool:
        """Remove one finalizer, keeping everyone else's (resourceVersion precondition, so a
        concurrent change is never overwritten). False when it was not there or the object is gone."""
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            return False
        body = {
            "metadata": {
                "finalizers": [f for f in finalizers if f != finalizer],
                "resourceVersion": meta["resourceVersion"],
            }
        }
        try:
            self._call(
                self.custom.patch_namespaced_custom_object,
                group,
                version,
                meta["namespace"],
                plural,
                meta["name"],
                body,
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status == 409:
                raise Conflict(f"{plural} {meta['namespace']}/{meta['name']} changed") from exc
            raise
        return True

    def create_object(self, body: Obj) -> bool:
        """Create a built-in object (ServiceAccount, Role, RoleBinding); False when it exists (409)."""

        def create(**kwargs: Any) -> Any:
            try:
                return utils.create_from_dict(
                    self.api, body, namespace=body["metadata"].get("namespace"), **kwargs
                )
            except utils.FailToCreateError as exc:  # one object: one ApiException, retried as such
                raise exc.api_exceptions[0] from exc

        create.__name__ = f"create {body.get('kind', 'object')}"
        try:
            self._call(create)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def find_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A namespaced built-in object of a kind `create_object` makes (ServiceAccount, Role,
        RoleBinding); None when it does not exist."""
        readers: dict[str, Callable[..., Any]] = {
            "ServiceAccount": self.core.read_namespaced_service_account,
            "Role": self.rbac.read_namespaced_role,
            "RoleBinding": self.rbac.read_namespaced_role_binding,
        }
        try:
            return self._plain(self._call(readers[kind], name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def update_role_rules(self, role: Obj, rules: list[Obj]) -> None:
        """Replace a Role's rules, only if it is unchanged since it was read (resourceVersion)."""
        meta = role["metadata"]
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "rules": rules}
        self._call(self.rbac.patch_namespaced_role, meta["name"], meta["namespace"], body)

    def service_account_exists(self, namespace: str, name: str) -> bool:
        try:
            self._call(self.core.read_namespaced_service_account, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- the operator's own Deployment (releasing on uninstall) --------------------------

    def find_deployment(self, namespace: str, name: str) -> Obj | None:
        try:
            return self._plain(self._call(self.apps.read_namespaced_deployment, name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        try:
            self._call(
                self.apps.patch_namespaced_deployment, name, namespace, {"spec": {"replicas": replicas}}
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"Deployment {namespace}/{name}") from exc
            raise

    def find_namespace_labels(self, name: str) -> dict[str, str] | None:
        """The namespace's labels; None when it does not exist."""
        try:
            ns = self._call(self.core.read_namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(ns.metadata.labels or {})

    # --- nodes (node faults) ---------------------------------------------------------------

    def find_node(self, name: str) -> Obj | None:
        try:
            return self._plain(self._call(self.core.read_node, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_nodes(self, label_selector: str = "") -> list[Obj]:
        items = self._call(self.core.list_node, label_selector=label_selector).items
        return [self._plain(item) for item in items]

    def patch_node(self, name: str, body: Obj) -> bool:
        """JSON merge patch of a node; with metadata.resourceVersion in `body` it is a precondition.
        False when the node changed since it was read (409) or is gone (404)."""
        try:
            self._call(self.core.patch_node, name, body, _content_type="application/merge-patch+json")
            return True
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise

    def list_pods_on_node(self, node: str) -> list[Obj]:
        """Every pod bound to a node, in every namespace (a node fault reaches them all)."""
        items = self._call(
            self.core.list_pod_for_all_namespaces, field_selector=f"spec.nodeName={node}"
        ).items
        return [self._plain(item) for item in items]

    def evict_pod(self, namespace: str, name: str, uid: str, grace_period_seconds: int | None) -> str | None:
        """Evict exactly this pod through the Eviction API (PodDisruptionBudgets decide). None when it
        was evicted or is gone; else why it was refused for now (a budget: 429)."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid), grace_period_seconds=grace_period_seconds
        )
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace), delete_options=options
        )
        API_REQUESTS.labels("create_namespaced_pod_eviction").inc()

        def attempt(timeouts: Timeouts) -> str | None:
            try:
                self.core.create_namespaced_pod_eviction(name, namespace, body, _request_timeout=timeouts)
                return None
            except ApiException as exc:
                if exc.status in (404, 409):  # gone, or the name now belongs to a replacement
                    return None
                # a budget forbids it now (429; 500 when several budgets cover the pod): an answer,
                # not a transient failure to retry here — the drain asks again later
                if exc.status == 429 or (exc.status == 500 and "disruption" in str(exc.body).lower()):
                    return _api_message(exc)
                raise

        return call_with_backoff(attempt, self.retry, what="create_namespaced_pod_eviction")

    def list_services(self, namespace: str) -> list[Obj]:
        items = self._call(self.core.list_namespaced_service, namespace).items
        return [self._plain(item) for item in items]

    def list_pdbs(self, namespace: str) -> list[Obj]:
        items = self._call(self.policy.list_namespaced_pod_disruption_budget, namespace).items
        return [self._plain(item) for item in items]

    def can_i(
        self,
        user: str,
        groups: list[str],
        *,
        namespace: str,
        verb: str,
        resource: str,
        group: str = "",
        subresource: str | None = None,
        uid: str | None = None,
        extra: Mapping[str, list[str]] | None = None,
        name: str | None = None,
    ) -> bool:
        """SubjectAccessReview: could `user` do this directly? (nobody gains power through us)
        `name`: one object (e.g. the ServiceAccount to impersonate), None: any of them."""
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                groups=groups,
                uid=uid,
                extra=dict(extra or {}),
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace,
                    verb=verb,
                    resource=resource,
                    group=group,
                    subresource=subresource,
                    name=name,
                ),
            )
        )
        result = self._call(self.authz.create_subject_access_review, review)  # persists nothing
        return bool(result.status.allowed)

    def whoami(self) -> str:
        """This client's user name as the API server authenticates it (SelfSubjectReview)."""
        review = self._call(
            client.AuthenticationV1Api(self.api).create_self_subject_review,
            client.V1SelfSubjectReview(),
        )
        return str(review.status.user_info.username)

    # --- the review key (a Secret in the operator's namespace) ---------------------------

    def find_secret(self, namespace: str, name: str) -> Obj | None:
        try:
            return self._plain(self._call(self.core.read_namespaced_secret, name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_secret(self, namespace: str, body: Obj) -> bool:
        """Create; False when one of that name exists already (409)."""
        try:
            self._call(self.core.create_namespaced_secret, namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    # --- the operator's Lease (coordination.k8s.io) ---------------------------------------

    def find_lease(self, namespace: str, name: str) -> Obj | None:
        try:
            return self._plain(self._call(self.coordination.read_namespaced_lease, name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_lease(self, namespace: str, body: Obj) -> bool:
        """Create; False when one of that name exists already (409)."""
        try:
            self._call(self.coordination.create_namespaced_lease, namespace, body)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def patch_lease(self, namespace: str, name: str, spec: Mapping[str, Any]) -> Obj:
        """Merge `spec` into the Lease (a renewal sets holderIdentity and renewTime)."""
        try:
            return self._plain(
                self._call(self.coordination.patch_namespaced_lease, name, namespace, {"spec": dict(spec)})
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"Lease {namespace}/{name}") from exc
            raise

    def replace_lease(self, body: Obj) -> Obj:
        """Replace the Lease as read (its metadata.resourceVersion is the precondition): Conflict
        when someone wrote it since, NotFound when it is gone."""
        meta = body["metadata"]
        try:
            return self._plain(
                self._call(self.coordination.replace_namespaced_lease, meta["name"], meta["namespace"], body)
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"Lease {meta['namespace']}/{meta['name']} changed since it was read") from exc
            if exc.status == 404:
                raise NotFound(f"Lease {meta['namespace']}/{meta['name']}") from exc
            raise

    def delete_lease(self, namespace: str, name: str) -> bool:
        """Delete; False when it was already gone."""
        try:
            self._call(self.coordination.delete_namespaced_lease, name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    # --- events --------------------------------------------------------------------------

    def post_event(
        self,
        obj: Mapping[str, Any],
        reason: str,
        note: str,
        type_: str = "Normal",
        at: dt.datetime | None = None,
    ) -> None:
        """Record a Kubernetes Event on one of our objects (`at`: when it happened, if it is posted
        later); failures are logged, never fatal. generateName makes it the one non-idempotent
        request: repeated only when surely unsent."""
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        stamp = at or now()
        event = client.EventsV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{meta.get('name', 'aftershock')}-", namespace=namespace
            ),
            event_time=stamp,
            reporting_controller="aftershock.dev/operator",
            reporting_instance="aftershock",
            action=reason,
            reason=reason,
            note=note[:1024],
            type=type_,
            regarding=client.V1ObjectReference(
                api_version=obj.get("apiVersion"),
                kind=obj.get("kind"),
                name=meta.get("name"),
                namespace=namespace,
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
        )
        try:
            self._call(self.events.create_namespaced_event, namespace, event, idempotent=False)
        except ApiException as exc:  # an event is a courtesy; the status is the record
            log.warning("could not post event %s on %s: %s", reason, meta.get("name"), exc.reason)
