"""All Kubernetes API I/O of the operator, in one place.

Handlers and engines call these methods and never the client directly, so the rules that keep a
chaos tool safe live here once: 409 on create means "already done", 404 on delete means "already
gone", deletes carry a UID precondition so a same-named replacement is never hit, and status
writes can carry a resourceVersion precondition so two operators never both claim a run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client, config, utils
from kubernetes.client.rest import ApiException

from aftershock import GROUP, VERSION
from aftershock.core.watch_scope import Scope

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PLURALS = {"ChaosExperiment": "chaosexperiments", "ChaosRun": "chaosruns", "ChaosPolicy": "chaospolicies"}


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


def load_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, the kubeconfig ($KUBECONFIG) otherwise."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Kube:
    """A thin, typed facade over the client for what aftershock reads and writes."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.events = client.EventsV1Api(api)
        self.networking = client.NetworkingV1Api(api)
        self.policy = client.PolicyV1Api(api)
        self.authz = client.AuthorizationV1Api(api)

    def _plain(self, obj: object) -> Obj:
        return cast(Obj, self.api.sanitize_for_serialization(obj))

    # --- our own kinds -------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        try:
            return cast(
                Obj, self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{kind} {namespace}/{name}") from exc
            raise

    def list_objects(self, kind: str, namespace: str, label_selector: str = "") -> list[Obj]:
        result = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], label_selector=label_selector
        )
        return cast(list[Obj], result.get("items", []))

    def create(self, kind: str, namespace: str, body: Obj) -> Obj | None:
        """Create; None when an object of that name already exists (409: the work is already done)."""
        try:
            return cast(
                Obj,
                self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], body),
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise

    def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

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
                self.custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, PLURALS[kind], name, body
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
        items = listers[kind](namespace, label_selector=label_selector).items
        return [self._plain(item) for item in items]

    def get_workload(self, kind: str, namespace: str, name: str) -> Obj:
        readers = {
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
        }
        try:
            return self._plain(readers[kind](name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{kind} {namespace}/{name}") from exc
            raise

    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]:
        items = self.apps.list_namespaced_replica_set(namespace, label_selector=label_selector).items
        return [self._plain(item) for item in items]

    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        items = self.core.list_namespaced_pod(namespace, label_selector=label_selector).items
        return [self._plain(item) for item in items]

    def delete_pod(self, namespace: str, name: str, uid: str, grace_period_seconds: int | None) -> bool:
        """Delete exactly this pod (UID precondition). False when it was already gone or replaced."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid), grace_period_seconds=grace_period_seconds
        )
        try:
            self.core.delete_namespaced_pod(name, namespace, body=options)
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
            self.core.patch_namespaced_pod(name, namespace, body)
            return True
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise

    def list_pods_in(self, scope: Scope, label_selector: str) -> list[Obj]:
        """Pods in the scope's namespaces (None: the whole cluster)."""
        if scope is None:
            items = self.core.list_pod_for_all_namespaces(label_selector=label_selector).items
            return [self._plain(item) for item in items]
        return [pod for ns in scope for pod in self.list_pods(ns, label_selector)]

    # --- network policies ----------------------------------------------------------------

    def create_network_policy(self, namespace: str, body: Obj) -> bool:
        """Create; False when it already exists (409: injected before)."""
        try:
            self.networking.create_namespaced_network_policy(namespace, body)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    def list_network_policies(self, label_selector: str, scope: Scope = None) -> list[Obj]:
        """NetworkPolicies in the scope's namespaces (None: the whole cluster)."""
        if scope is None:
            items = self.networking.list_network_policy_for_all_namespaces(
                label_selector=label_selector
            ).items
        else:
            items = [
                item
                for ns in scope
                for item in self.networking.list_namespaced_network_policy(
                    ns, label_selector=label_selector
                ).items
            ]
        return [self._plain(item) for item in items]

    def delete_network_policy(self, namespace: str, name: str) -> None:
        """Delete; already gone is fine (reverts must be idempotent)."""
        try:
            self.networking.delete_namespaced_network_policy(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_in(self, kind: str, scope: Scope, label_selector: str = "") -> list[Obj]:
        """Our objects of one kind in the scope's namespaces (None: the whole cluster)."""
        return self._list_scoped(GROUP, VERSION, PLURALS[kind], scope, label_selector)

    def _list_scoped(
        self, group: str, version: str, plural: str, scope: Scope, label_selector: str
    ) -> list[Obj]:
        if scope is None:
            result = self.custom.list_cluster_custom_object(
                group, version, plural, label_selector=label_selector
            )
            return cast(list[Obj], result.get("items", []))
        return [
            item
            for ns in scope
            for item in self.custom.list_namespaced_custom_object(
                group, version, ns, plural, label_selector=label_selector
            ).get("items", [])
        ]

    def remove_finalizer(self, kind: str, obj: Obj, finalizer: str) -> bool:
        """Remove one of our kinds' finalizers (see drop_foreign_finalizer)."""
        return self.drop_foreign_finalizer(GROUP, VERSION, PLURALS[kind], obj, finalizer)

    def patch_spec(self, kind: str, namespace: str, name: str, spec: Mapping[str, Any]) -> Obj:
        return cast(
            Obj,
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name, {"spec": dict(spec)}
            ),
        )

    # --- policy inputs -------------------------------------------------------------------

    def list_policies(self) -> list[Obj]:
        result = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURALS["ChaosPolicy"])
        return cast(list[Obj], result.get("items", []))

    def get_policy(self, name: str) -> Obj | None:
        try:
            return cast(
                Obj, self.custom.get_cluster_custom_object(GROUP, VERSION, PLURALS["ChaosPolicy"], name)
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create_policy(self, body: Obj) -> bool:
        """Create; False when one of that name exists already (409)."""
        try:
            self.custom.create_cluster_custom_object(GROUP, VERSION, PLURALS["ChaosPolicy"], body)
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
            self.custom.replace_cluster_custom_object(
                GROUP, VERSION, PLURALS["ChaosPolicy"], meta["name"], body
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"ChaosPolicy {meta['name']} changed since it was read") from exc
            raise

    def delete_policy(self, name: str, uid: str) -> None:
        """Delete exactly this policy (UID precondition); already gone is fine."""
        try:
            self.custom.delete_cluster_custom_object(
                GROUP,
                VERSION,
                PLURALS["ChaosPolicy"],
                name,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # --- another project's kinds (LitmusChaos): merge patches only, never replaced ---------

    def missing_crds(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """Which of these CustomResourceDefinitions do not exist."""
        ext = client.ApiextensionsV1Api(self.api)
        missing = []
        for name in names:
            try:
                ext.read_custom_resource_definition(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                missing.append(name)
        return missing

    def get_foreign(self, group: str, version: str, plural: str, namespace: str, name: str) -> Obj | None:
        try:
            return cast(
                Obj, self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
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
            self.custom.create_namespaced_custom_object(group, version, namespace, plural, body)
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
                self.custom.patch_namespaced_custom_object(
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

    def delete_foreign(self, group: str, version: str, plural: str, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                group, version, namespace, plural, name, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

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
            self.custom.patch_namespaced_custom_object(
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
        try:
            utils.create_from_dict(self.api, body, namespace=body["metadata"].get("namespace"))
        except utils.FailToCreateError as exc:
            if all(isinstance(e, ApiException) and e.status == 409 for e in exc.api_exceptions):
                return False
            raise exc.api_exceptions[0] from exc
        return True

    def service_account_exists(self, namespace: str, name: str) -> bool:
        try:
            self.core.read_namespaced_service_account(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # --- the operator's own Deployment (releasing on uninstall) --------------------------

    def get_deployment(self, namespace: str, name: str) -> Obj | None:
        try:
            return self._plain(self.apps.read_namespaced_deployment(name, namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment(name, namespace, {"spec": {"replicas": replicas}})

    def namespace_labels(self, name: str) -> dict[str, str] | None:
        """The namespace's labels; None when it does not exist."""
        try:
            ns = self.core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(ns.metadata.labels or {})

    def list_pdbs(self, namespace: str) -> list[Obj]:
        items = self.policy.list_namespaced_pod_disruption_budget(namespace).items
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
    ) -> bool:
        """SubjectAccessReview: could `user` do this directly? (nobody gains power through us)"""
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                groups=groups,
                uid=uid,
                extra=dict(extra or {}),
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace, verb=verb, resource=resource, group=group, subresource=subresource
                ),
            )
        )
        result = self.authz.create_subject_access_review(review)
        return bool(result.status.allowed)

    # --- events --------------------------------------------------------------------------

    def post_event(self, obj: Mapping[str, Any], reason: str, note: str, type_: str = "Normal") -> None:
        """Record a Kubernetes Event on one of our objects; failures are logged, never fatal."""
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        stamp = now()
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
            self.events.create_namespaced_event(namespace, event)
        except ApiException as exc:  # an event is a courtesy; the status is the record
            log.warning("could not post event %s on %s: %s", reason, meta.get("name"), exc.reason)
