"""Installing LitmusChaos's CRDs and its ChaosHub's ChaosExperiments, as a user would (kubectl apply).

Both come from the LitmusChaos material next to the checkout (../shared/litmus: chaos_crds.yaml of
chaos-operator 3.18.0, hub/kubernetes-experiments.yaml of chaos-charts 3.28.0), or from
$AFTERSHOCK_LITMUS_CRDS and $AFTERSHOCK_LITMUS_SRC; the project keeps no copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster
from tests.support.tools import build_tools
from tests.support.waiting import wait_for

GROUP, VERSION = "litmuschaos.io", "v1alpha1"
ENGINES, EXPERIMENTS, RESULTS = "chaosengines", "chaosexperiments", "chaosresults"
PLURALS = (ENGINES, EXPERIMENTS, RESULTS)
CRD_NAMES = tuple(f"{plural}.{GROUP}" for plural in PLURALS)
FINALIZER = "chaosengine.litmuschaos.io/finalizer"
ENV = "AFTERSHOCK_LITMUS_CRDS"


def litmus_source() -> Path:
    """The LitmusChaos material: $AFTERSHOCK_LITMUS_SRC, else ../shared/litmus next to the checkout."""
    path: Path = build_tools().litmus_source()
    return path


def hub_file() -> Path:
    """The ChaosHub's Kubernetes ChaosExperiments (all 31, each with its default env)."""
    path = litmus_source() / "hub" / "kubernetes-experiments.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: set AFTERSHOCK_LITMUS_SRC to the LitmusChaos material")
    return path


def install_hub(cluster: Cluster, namespace: str) -> None:
    """`kubectl apply` of the hub's ChaosExperiments into `namespace`, as a user installs them."""
    cluster.kubectl("apply", "-n", namespace, "-f", str(hub_file()))


def _manifests(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
    return [path] if path.is_file() else []


def crd_source() -> tuple[list[Path], bool]:
    """The manifests to apply (the file or directory in $AFTERSHOCK_LITMUS_CRDS, else
    chaos_crds.yaml of the Litmus material), and True: they are the real Litmus CRDs (there is no
    stand-in any more)."""
    given = os.environ.get(ENV)
    path = Path(given) if given else litmus_source() / "chaos_crds.yaml"
    files = _manifests(path)
    if not files:
        raise FileNotFoundError(
            f"no Litmus CRDs at {path}: set {ENV} (a file or directory) or AFTERSHOCK_LITMUS_SRC"
        )
    return files, True


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
