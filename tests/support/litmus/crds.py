"""Installing the Litmus CRDs the tests run against: the real ones when available, else a stand-in."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster
from tests.support.tools import REPO
from tests.support.waiting import wait_for

GROUP, VERSION = "litmuschaos.io", "v1alpha1"
PLURALS = ("chaosengines", "chaosexperiments", "chaosresults")
CRD_NAMES = tuple(f"{plural}.{GROUP}" for plural in PLURALS)
STAND_IN = Path(__file__).resolve().parent / "crds.yaml"
ENV = "AFTERSHOCK_LITMUS_CRDS"
# the shared folder next to the working copy (../shared), and the workplace's own (/work/shared)
SHARED = tuple(dict.fromkeys((REPO.parent / "shared" / "litmus", Path("/work/shared/litmus"))))


def _manifests(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    return [path] if path.is_file() else []


def crd_source() -> tuple[list[Path], bool]:
    """The manifests to apply, and whether they are the real Litmus CRDs.

    In order: the file or directory in $AFTERSHOCK_LITMUS_CRDS (an error if it holds nothing),
    then <repo>/../shared/litmus/ or /work/shared/litmus/ if one holds YAML files, then the stand-in
    next to this module.
    """
    given = os.environ.get(ENV)
    if given:
        files = _manifests(Path(given))
        if not files:
            raise FileNotFoundError(f"{ENV}={given} names no YAML file or directory of them")
        return files, True
    for folder in SHARED:
        files = _manifests(folder)
        if files:
            return files, True
    return [STAND_IN], False


def _established(ext: client.ApiextensionsV1Api) -> bool:
    for name in CRD_NAMES:
        crd = ext.read_custom_resource_definition(name)
        conditions = crd.status.conditions if crd.status else None
        if not any(c.type == "Established" and c.status == "True" for c in conditions or []):
            return False
    return True


def install(cluster: Cluster, api: client.ApiClient) -> bool:
    """Apply the Litmus CRDs and wait until all three are Established; True if they are the real ones."""
    files, real = crd_source()
    for path in files:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    ext = client.ApiextensionsV1Api(api)
    wait_for(lambda: _established(ext), timeout=30, message="the Litmus CRDs Established")
    return real


def _release_finalizers(objects: client.CustomObjectsApi) -> None:
    """Objects left with a finalizer (no Litmus operator to remove it) would keep a CRD from going."""
    for plural in PLURALS:
        try:
            items = objects.list_cluster_custom_object(GROUP, VERSION, plural)["items"]
        except ApiException as exc:
            if exc.status == 404:
                continue
            raise
        for item in items:
            meta = item["metadata"]
            if not meta.get("finalizers"):
                continue
            try:
                objects.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    meta["namespace"],
                    plural,
                    meta["name"],
                    {"metadata": {"finalizers": None}},
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise


def _gone(ext: client.ApiextensionsV1Api, objects: client.CustomObjectsApi) -> bool:
    _release_finalizers(objects)
    for name in CRD_NAMES:
        try:
            ext.read_custom_resource_definition(name)
            return False
        except ApiException as exc:
            if exc.status != 404:
                raise
    return True


def uninstall(cluster: Cluster, api: client.ApiClient) -> None:
    """Delete the three Litmus CRDs (and with them every Litmus object) and wait until they are gone."""
    ext = client.ApiextensionsV1Api(api)
    for name in CRD_NAMES:
        try:
            ext.delete_custom_resource_definition(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
    objects = client.CustomObjectsApi(api)
    wait_for(lambda: _gone(ext, objects), timeout=60, message="the Litmus CRDs deleted")
