"""The Helm chart on the real API server: its manifests are accepted, it installs, and its RBAC is
both sufficient (an operator holding only the chart's ServiceAccount token carries out a pod-delete
run) and least-privilege (kubectl auth can-i as that ServiceAccount).

Pods never run containers on this cluster, so the operator runs here as a process with the
Deployment's own flags and the ServiceAccount's token, and the cleanup hook's command runs here
too; Helm is told --no-hooks, because it would wait for a Job whose pod never finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.chaos import Chaos, experiment, partition
from tests.support.cluster import Cluster
from tests.support.net import free_port
from tests.support.operator import OperatorProcess, share_review_key, start_operator
from tests.support.tools import REPO, bin_dir
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

CHART = REPO / "charts" / "aftershock"


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(bin_dir("helm") / "helm"), "--kubeconfig", str(cluster.kubeconfig), *args],
        text=True,
        capture_output=True,
        check=False,
        timeout=180,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def can_i(cluster: Cluster, who: str, verb: str, resource: str, *where: str) -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, *where, "--as", who, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stdout + result.stderr
    return answer == "yes"


def token_kubeconfig(api: client.ApiClient, cluster: Cluster, namespace: str, sa: str, out: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount itself (a TokenRequest), nothing else."""
    token = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(sa, namespace, {"spec": {"expirationSeconds": 3600}})
        .status.token
    )
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    server = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [server],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": sa, "context": {"cluster": server["name"], "user": sa}}],
        "current-context": sa,
    }
    out.write_text(yaml.safe_dump(config))
    return out


def base_install(release_namespace: str, *values: str) -> list[str]:
    """The suite owns the CRDs, and the webhook's Service would have no serving pod here."""
    sets = ["crds.install=false", "webhook.enabled=false", *values]
    return ["--namespace", release_namespace, *[arg for v in sets for arg in ("--set", v)]]


def chart_operator_args(api: client.ApiClient, namespace: str, name: str, files: Path) -> list[str]:
    """The operator flags of the chart's Deployment as installed, to run the same command here:
    files it mounts from ConfigMaps are copied into `files`, and the ports and bind address are
    left to start_operator. The pod's env (its namespace) becomes --operator-namespace."""
    deployment = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    pod = deployment.spec.template.spec
    c = pod.containers[0]
    assert c.args[0] == "run", c.args
    mounts = {m.mount_path: m.name for m in c.volume_mounts or []}
    volumes = {v.name: v for v in pod.volumes or []}
    args: list[str] = []
    it = iter(c.args[1:])
    for arg in it:
        if arg in ("--metrics-port", "--health-port"):
            next(it)
            continue
        if arg == "--default-policy-file":
            path = Path(next(it))
            volume = volumes[mounts[str(path.parent)]]
            data = client.CoreV1Api(api).read_namespaced_config_map(volume.config_map.name, namespace).data
            local = files / path.name
            local.write_text(data[path.name])
            args += [arg, str(local)]
            continue
        args.append(arg)
    share_review_key(api, namespace)
    return [
        *args,
        "--operator-namespace",
        namespace,
        "--review-key-namespace",
        namespace,
        "--sweep-interval",
        "2",
    ]


def hook_command(manifests: str, hook: str) -> list[str]:
    """The args of the chart's cleanup Job for one hook, from rendered or stored hook manifests."""
    jobs = [
        d
        for d in yaml.safe_load_all(manifests)
        if d and d["kind"] == "Job" and d["metadata"]["annotations"]["helm.sh/hook"] == hook
    ]
    assert len(jobs) == 1, manifests
    args: list[str] = jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def run_cli(kubeconfig: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "aftershock"), *args],
        env=dict(os.environ, KUBECONFIG=str(kubeconfig)),
        text=True,
        capture_output=True,
        check=False,
        timeout=300,
    )


class Kubelet:
    """Plays the kubelet for an operator process run here: pods never really run on this cluster,
    so when the chart's Deployment is scaled to 0 (the cleanup hook does that), this stops the
    process as a kubelet would stop the container."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, op: OperatorProcess) -> None:
        self.apps = client.AppsV1Api(api)
        self.namespace, self.name, self.op = namespace, name, op
        self.saw_zero = threading.Event()  # the Deployment was scaled to 0: the kubelet starts stopping it
        self.stopped_at_zero = threading.Event()  # ... and the process has exited
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            deployment = self.apps.read_namespaced_deployment(self.name, self.namespace)
            if deployment.spec.replicas == 0:
                self.saw_zero.set()
                self.op.stop()
                self.stopped_at_zero.set()
                return
            self._done.wait(0.2)

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)


def remove_release(cluster: Cluster, api: client.ApiClient, release: str) -> None:
    """Teardown: the release (named like its namespace) and the default policy its operator made."""
    helm(cluster, "uninstall", release, "--namespace", release, "--no-hooks", check=False)
    delete_policy(api, f"{release}-aftershock-default")


def finalizers(api: client.ApiClient, namespace: str, plural: str) -> dict[str, list[str]]:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "aftershock.dev", "v1alpha1", namespace, plural
    )["items"]
    return {i["metadata"]["name"]: i["metadata"].get("finalizers") or [] for i in items}


def get_policy(api: client.ApiClient, name: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = client.CustomObjectsApi(api).get_cluster_custom_object(
            "aftershock.dev", "v1alpha1", "chaospolicies", name
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return result


def delete_policy(api: client.ApiClient, name: str) -> None:
    try:
        client.CustomObjectsApi(api).delete_cluster_custom_object(
            "aftershock.dev", "v1alpha1", "chaospolicies", name
        )
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def release_namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"t-helm-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def dry_run(cluster: Cluster, manifests: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "-f",
        "-",
        input=manifests,
        check=False,
    )


@pytest.mark.parametrize("mode", ["all-namespaces", "namespaced"])
def test_rendered_manifests_are_accepted_by_the_api_server(
    cluster: Cluster, crds: None, namespace: str, mode: str
) -> None:
    args = ["template", "rel", str(CHART), "--namespace", namespace]
    if mode == "namespaced":
        # the example file's namespaces, replaced by ones that exist here
        args += [
            "-f",
            str(CHART / "values-namespaced.yaml"),
            "--set",
            f"watchNamespaces={{{namespace},default}}",
        ]
    rendered = helm(cluster, *args).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    kinds = {doc["kind"] for doc in docs}
    assert {
        "CustomResourceDefinition",
        "Deployment",
        "ValidatingWebhookConfiguration",
        "ConfigMap",
        "Job",
    } <= kinds
    # the default policy the operator will create from the ConfigMap passes the CRD's schema and rules
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and "policy.yaml" in d.get("data", {})]
    policy = {
        "apiVersion": "aftershock.dev/v1alpha1",
        "kind": "ChaosPolicy",
        "metadata": {"name": "rel-aftershock-default"},
        "spec": yaml.safe_load(config["data"]["policy.yaml"]),
    }
    accepted = dry_run(cluster, yaml.safe_dump(policy))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    result = dry_run(cluster, rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deployment.apps/rel-aftershock serverside-applied (server dry run)" in result.stdout
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/rel-aftershock" in result.stdout
    roles = [
        line for line in result.stdout.splitlines() if line.startswith("role.rbac.authorization.k8s.io/")
    ]
    # one per watched namespace, plus the operator's own (its Deployment, for the cleanup hook)
    assert len(roles) == (3 if mode == "namespaced" else 1), result.stdout


def test_helm_install_namespaced_rbac_suffices_for_a_pod_delete_run_and_nothing_more(
    cluster: Cluster,
    api: client.ApiClient,
    crds: None,
    release_namespace: str,
    solo_namespace: str,
    tmp_path: Path,
) -> None:
    release = release_namespace  # unique: cluster-scoped objects carry the release name
    sa = f"{release}-aftershock"
    who = f"system:serviceaccount:{release_namespace}:{sa}"
    op: OperatorProcess | None = None
    helm(
        cluster,
        "install",
        release,
        str(CHART),
        *base_install(
            release_namespace, f"watchNamespaces={{{solo_namespace}}}", "defaultPolicy.maxActiveRuns=100"
        ),
    )
    try:
        # least privilege, asked of the API server's authorizer
        assert can_i(cluster, who, "delete", "pods", "-n", solo_namespace)  # the positive control
        assert can_i(cluster, who, "create", "networkpolicies", "-n", solo_namespace)
        for verb in ("get", "list", "watch"):
            assert not can_i(cluster, who, verb, "secrets", "-n", release_namespace)
            assert not can_i(cluster, who, verb, "secrets", "-n", solo_namespace)
        assert not can_i(cluster, who, "list", "secrets", "--all-namespaces")
        for verb in ("delete", "patch"):
            assert not can_i(cluster, who, verb, "pods", "-n", "default")
        assert not can_i(cluster, who, "create", "networkpolicies", "-n", "default")
        assert not can_i(cluster, who, "patch", "chaosexperiments.aftershock.dev", "-n", "default")
        for verb in ("create", "patch", "update", "delete"):
            assert not can_i(cluster, who, verb, "customresourcedefinitions")
        # namespaced mode reads nothing namespaced across the cluster
        for resource in ("pods", "chaosruns.aftershock.dev", "networkpolicies"):
            assert not can_i(cluster, who, "list", resource, "--all-namespaces"), resource
            assert not can_i(cluster, who, "list", resource, "-n", "default"), resource
        # policies: only its own default one may be changed or deleted
        assert can_i(cluster, who, "delete", f"chaospolicies.aftershock.dev/{sa}-default")
        assert not can_i(cluster, who, "delete", "chaospolicies.aftershock.dev/test-suite")
        assert not can_i(cluster, who, "update", "chaospolicies.aftershock.dev/test-suite")
        # its own Deployment (for the cleanup hook), and no other
        assert can_i(cluster, who, "patch", f"deployments/{sa}", "-n", release_namespace)
        assert not can_i(cluster, who, "patch", "deployments/other", "-n", release_namespace)

        # Helm did not create the default policy: the operator does, at start
        assert get_policy(api, f"{sa}-default") is None
        kubeconfig = token_kubeconfig(api, cluster, release_namespace, sa, tmp_path / "sa.kubeconfig")
        args = chart_operator_args(api, release_namespace, sa, tmp_path)
        assert args[:2] == ["--namespace", solo_namespace]
        op = start_operator(kubeconfig, tmp_path / "operator.log", *args)
        policy = wait_for(lambda: get_policy(api, f"{sa}-default"), timeout=30, message="the default policy")
        assert policy["spec"]["blastRadius"]["maxPodsPercent"] == 50
        assert policy["spec"]["concurrency"]["maxActiveRuns"] == 100

        # the operator, authenticated only by the chart's ServiceAccount token, runs a fault
        client.AppsV1Api(api).create_namespaced_deployment(solo_namespace, deployment("shop", replicas=3))
        wait_for(
            lambda: len(ready_pods(api, solo_namespace, "shop")) == 3, timeout=60, message="3 Ready pods"
        )
        before = {p.metadata.uid for p in ready_pods(api, solo_namespace, "shop")}
        chaos = Chaos(api, solo_namespace)
        chaos.create_experiment(experiment("kill-one", app="shop"))
        run = wait_for(lambda: chaos.finished_run("kill-one"), timeout=120, message="a finished run")
        status = run["status"]
        assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
        victim = status["targets"][0]["uid"]
        assert victim in before
        assert victim not in {p.metadata.uid for p in ready_pods(api, solo_namespace, "shop")}
        wait_for(
            lambda: (
                (chaos.get("chaosexperiments", "kill-one").get("status") or {})
                .get("summary", {})
                .get("passed")
                == 1
            ),
            timeout=30,
            message="the experiment's summary",
        )
        events = chaos.events_for(api, run["metadata"]["name"])
        assert events, "the operator posted Events about its run"
        log = op.log()
        # the sweeper and the concurrency count ran without a single cluster-wide read
        assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    finally:
        if op is not None:
            op.stop()
        remove_release(cluster, api, release)
    rbac = client.RbacAuthorizationV1Api(api)
    assert not rbac.list_cluster_role(label_selector=f"app.kubernetes.io/instance={release}").items
    assert not rbac.list_namespaced_role(solo_namespace).items


def test_the_default_policy_follows_the_values_and_is_the_operators_alone(
    cluster: Cluster,
    api: client.ApiClient,
    crds: None,
    release_namespace: str,
    solo_namespace: str,
    tmp_path: Path,
) -> None:
    release = release_namespace
    sa = f"{release}-aftershock"
    name = f"{sa}-default"
    values = base_install(release_namespace, f"watchNamespaces={{{solo_namespace}}}")

    def start_and_stop(step: str) -> str:
        """Start the chart's operator command as the chart's ServiceAccount until it is healthy
        (the default policy is applied before that), stop it, return its log."""
        files = tmp_path / step
        files.mkdir()
        op = start_operator(
            kubeconfig, files / "operator.log", *chart_operator_args(api, release_namespace, sa, files)
        )
        op.stop()
        return op.log()

    helm(cluster, "install", release, str(CHART), *values)
    kubeconfig = token_kubeconfig(api, cluster, release_namespace, sa, tmp_path / "sa.kubeconfig")
    try:
        start_and_stop("install")
        created = get_policy(api, name)
        assert created is not None and created["spec"]["blastRadius"]["maxPodsPercent"] == 50
        assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "aftershock-operator"

        # a changed value replaces the spec
        helm(
            cluster,
            "upgrade",
            release,
            str(CHART),
            *values,
            "--no-hooks",
            "--set",
            "defaultPolicy.maxPodsPercent=20",
        )
        start_and_stop("changed")
        changed = get_policy(api, name)
        assert changed is not None and changed["spec"]["blastRadius"]["maxPodsPercent"] == 20
        assert changed["metadata"]["uid"] == created["metadata"]["uid"]

        # a hand edit survives a restart while the values stay the same
        client.CustomObjectsApi(api).patch_cluster_custom_object(
            "aftershock.dev", "v1alpha1", "chaospolicies", name, {"spec": {"blastRadius": {"maxPods": 2}}}
        )
        start_and_stop("edited")
        edited = get_policy(api, name)
        assert edited is not None and edited["spec"]["blastRadius"]["maxPods"] == 2

        # turned off: deleted
        helm(
            cluster,
            "upgrade",
            release,
            str(CHART),
            *values,
            "--no-hooks",
            "--set",
            "defaultPolicy.enabled=false",
        )
        start_and_stop("off")
        assert get_policy(api, name) is None

        # a policy of that name the operator did not make is never touched, on or off
        client.CustomObjectsApi(api).create_cluster_custom_object(
            "aftershock.dev",
            "v1alpha1",
            "chaospolicies",
            {
                "apiVersion": "aftershock.dev/v1alpha1",
                "kind": "ChaosPolicy",
                "metadata": {"name": name},
                "spec": {"blastRadius": {"maxPodsPercent": 7}},
            },
        )
        log = start_and_stop("theirs-off")
        helm(
            cluster,
            "upgrade",
            release,
            str(CHART),
            *values,
            "--no-hooks",
            "--set",
            "defaultPolicy.enabled=true",
        )
        log += start_and_stop("theirs-on")
        theirs = get_policy(api, name)
        assert theirs is not None and theirs["spec"]["blastRadius"]["maxPodsPercent"] == 7, theirs
        assert "aftershock.dev/default-policy-hash" not in (theirs["metadata"].get("annotations") or {})
        assert "did not create" in log, log[-3000:]
    finally:
        remove_release(cluster, api, release)


def test_uninstall_lets_go_of_everything_and_keeps_the_crds(
    cluster: Cluster,
    api: client.ApiClient,
    crds: None,
    release_namespace: str,
    solo_namespace: str,
    tmp_path: Path,
) -> None:
    """The pre-delete hook's command, run as the chart's ServiceAccount while the operator (also as
    that ServiceAccount) holds a scheduled experiment and a live network partition; then uninstall.
    Nothing may be left stuck in deletion, and no fault may stay in place."""
    release = release_namespace
    sa = f"{release}-aftershock"
    values = [
        "--namespace",
        release_namespace,
        "--set",
        "webhook.enabled=false",
        "--set",
        f"watchNamespaces={{{solo_namespace}}}",
        "--set",
        "defaultPolicy.maxActiveRuns=100",
        "--set",
        "defaultPolicy.maxActiveRunsPerNamespace=5",
        # the chart installs the CRDs too, taking over the suite's identical ones, and keeps them
        "--set",
        "crds.install=true",
        "--set",
        "crds.keep=true",
        "--take-ownership",
    ]
    helm(cluster, "install", release, str(CHART), *values)
    kubelet: Kubelet | None = None
    op: OperatorProcess | None = None
    try:
        kubeconfig = token_kubeconfig(api, cluster, release_namespace, sa, tmp_path / "sa.kubeconfig")
        op = start_operator(
            kubeconfig, tmp_path / "operator.log", *chart_operator_args(api, release_namespace, sa, tmp_path)
        )
        kubelet = Kubelet(api, release_namespace, sa, op)
        wait_for(lambda: get_policy(api, f"{sa}-default"), timeout=30, message="the default policy")
        client.AppsV1Api(api).create_namespaced_deployment(solo_namespace, deployment("shop", replicas=2))
        wait_for(lambda: len(ready_pods(api, solo_namespace, "shop")) == 2, timeout=60, message="Ready pods")
        chaos = Chaos(api, solo_namespace)
        chaos.create_experiment(experiment("hourly", app="shop", extra_spec={"schedule": "@every 1h"}))
        partition = {"duration": "10m", "networkPartition": {"direction": "Both"}}
        chaos.create_experiment(experiment("cut", app="shop", fault=partition, timeout="15m"))
        run = wait_for(
            lambda: next(
                (r for r in chaos.runs("cut") if (r.get("status") or {}).get("phase") == "Observing"), None
            ),
            timeout=60,
            message="the partition in place",
        )
        networking = client.NetworkingV1Api(api)
        assert networking.list_namespaced_network_policy(solo_namespace).items
        # a scheduled experiment is an entry in the scheduler's heap, not a daemon: no finalizer,
        # so nothing of it can get stuck; the active run holds one until its fault is reverted
        wait_for(
            lambda: (chaos.get("chaosexperiments", "hourly").get("status") or {}).get("nextScheduleTime"),
            timeout=30,
            message="the scheduled experiment planned",
        )
        assert "aftershock.dev/finalizer" not in finalizers(api, solo_namespace, "chaosexperiments")["hourly"]
        assert (
            "aftershock.dev/finalizer"
            in finalizers(api, solo_namespace, "chaosruns")[run["metadata"]["name"]]
        )

        # what Helm runs before deleting anything (kwok pods run no containers, so we run it here)
        command = hook_command(
            helm(cluster, "get", "hooks", release, "-n", release_namespace).stdout, "pre-delete"
        )
        result = run_cli(kubeconfig, command)
        assert result.returncode == 0, result.stdout + result.stderr
        assert kubelet.saw_zero.is_set(), "the hook stopped the operator first"
        # the operator's graceful stop may outlast the hook's own steps here, where its pods are
        # kwok's and vanish at once; a real kubelet has the container gone before the pod
        wait_for(kubelet.stopped_at_zero.is_set, timeout=30, message="the operator process stopped")
        assert f"aborted run {solo_namespace}/{run['metadata']['name']}" in result.stdout, result.stdout

        aborted = chaos.get("chaosruns", run["metadata"]["name"])["status"]
        assert aborted["phase"] == "Aborted" and aborted["reason"] == "OperatorReleased", aborted
        assert not networking.list_namespaced_network_policy(solo_namespace).items, "the fault was reverted"
        labelled = client.CoreV1Api(api).list_namespaced_pod(
            solo_namespace, label_selector="aftershock.dev/run"
        )
        assert not labelled.items, "the pods' partition label was removed"
        for plural in ("chaosexperiments", "chaosruns"):
            assert not any(finalizers(api, solo_namespace, plural).values()), plural
        assert get_policy(api, f"{sa}-default") is None, "the default policy went with the release"

        helm(cluster, "uninstall", release, "--namespace", release_namespace, "--no-hooks")
        # nothing of the release is left, except the CRDs it was told to keep
        ext = client.ApiextensionsV1Api(api)
        for crd in (
            "chaosexperiments.aftershock.dev",
            "chaosruns.aftershock.dev",
            "chaospolicies.aftershock.dev",
        ):
            assert ext.read_custom_resource_definition(crd).metadata.deletion_timestamp is None
        leftovers = cluster.kubectl(
            "get",
            "deployments,services,configmaps,serviceaccounts,roles,rolebindings,jobs",
            "-n",
            release_namespace,
            "-l",
            f"app.kubernetes.io/instance={release}",
            "-o",
            "name",
        ).stdout
        assert not leftovers.strip(), leftovers
        # and every experiment can be deleted at once, with nobody running
        chaos.delete("chaosexperiments", "hourly")
        chaos.delete("chaosexperiments", "cut")
        wait_for(
            lambda: (
                not finalizers(api, solo_namespace, "chaosexperiments")
                and not finalizers(api, solo_namespace, "chaosruns")
            ),
            timeout=30,
            message="experiments and runs gone",
        )
    finally:
        if kubelet is not None:
            kubelet.close()
        if op is not None:
            op.stop()
        remove_release(cluster, api, release)


def test_an_upgrade_that_stops_watching_a_namespace_lets_go_of_it(
    cluster: Cluster,
    api: client.ApiClient,
    crds: None,
    release_namespace: str,
    solo_namespace: str,
    another_solo_namespace: str,
    tmp_path: Path,
) -> None:
    release = release_namespace
    sa = f"{release}-aftershock"
    kept, dropped = solo_namespace, another_solo_namespace
    helm(
        cluster,
        "install",
        release,
        str(CHART),
        *base_install(release_namespace, f"watchNamespaces={{{kept},{dropped}}}"),
    )
    kubelet: Kubelet | None = None
    op: OperatorProcess | None = None
    try:
        kubeconfig = token_kubeconfig(api, cluster, release_namespace, sa, tmp_path / "sa.kubeconfig")
        op = start_operator(
            kubeconfig, tmp_path / "operator.log", *chart_operator_args(api, release_namespace, sa, tmp_path)
        )
        kubelet = Kubelet(api, release_namespace, sa, op)
        # an active run (a held partition) in each namespace: only it carries our finalizer
        for ns in (kept, dropped):
            client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("shop", replicas=2))
            Chaos(api, ns).create_experiment(experiment("hourly", app="shop", fault=partition("1h")))
        held: dict[str, str] = {}
        for ns in (kept, dropped):
            held[ns] = wait_for(
                lambda ns=ns: next(
                    (
                        r["metadata"]["name"]
                        for r in Chaos(api, ns).runs("hourly")
                        if (r.get("status") or {}).get("phase") == "Observing"
                        and "aftershock.dev/finalizer" in (r["metadata"].get("finalizers") or [])
                    ),
                    None,
                ),
                timeout=60,
                message=f"the held run in {ns}",
            )
        new_values = base_install(release_namespace, f"watchNamespaces={{{kept}}}")
        # the new chart's pre-upgrade hook, as Helm would run it before changing anything
        rendered = helm(
            cluster,
            "template",
            release,
            str(CHART),
            *new_values,
            "--show-only",
            "templates/cleanup-hook.yaml",
        ).stdout
        result = run_cli(kubeconfig, hook_command(rendered, "pre-upgrade"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert kubelet.saw_zero.is_set()
        wait_for(kubelet.stopped_at_zero.is_set, timeout=30, message="the operator process stopped")
        assert finalizers(api, dropped, "chaosruns") == {held[dropped]: []}
        assert finalizers(api, kept, "chaosruns")[held[kept]] == ["aftershock.dev/finalizer"]
        released = Chaos(api, dropped).get("chaosruns", held[dropped])["status"]
        assert released["phase"] == "Aborted" and released["reason"] == "OperatorReleased", released
        assert not client.NetworkingV1Api(api).list_namespaced_network_policy(dropped).items

        helm(cluster, "upgrade", release, str(CHART), *new_values, "--no-hooks")
        upgraded = client.AppsV1Api(api).read_namespaced_deployment(sa, release_namespace)
        assert upgraded.spec.replicas == 1, "the upgrade brought the operator back"
        assert upgraded.spec.template.spec.containers[0].args[1:3] == ["--namespace", kept]
        assert not can_i(
            cluster,
            f"system:serviceaccount:{release_namespace}:{sa}",
            "patch",
            "chaosexperiments.aftershock.dev",
            "-n",
            dropped,
        )
        # the dropped namespace's experiment can be deleted with nobody watching it
        Chaos(api, dropped).delete("chaosexperiments", "hourly")
        wait_for(lambda: not finalizers(api, dropped, "chaosexperiments"), timeout=30, message="deleted")

        # an upgrade that drops nothing changes nothing, and does not stop the operator
        again = run_cli(kubeconfig, hook_command(rendered, "pre-upgrade"))
        assert again.returncode == 0 and "nothing to release" in again.stdout, again.stdout + again.stderr
        assert client.AppsV1Api(api).read_namespaced_deployment(sa, release_namespace).spec.replicas == 1
    finally:
        if kubelet is not None:
            kubelet.close()
        if op is not None:
            op.stop()
        remove_release(cluster, api, release)


def test_helm_all_namespaces_then_upgrade_to_namespaced(
    cluster: Cluster, api: client.ApiClient, crds: None, release_namespace: str, namespace: str
) -> None:
    release = release_namespace
    who = f"system:serviceaccount:{release_namespace}:{release}-aftershock"
    base = ["--namespace", release_namespace, "--set", "crds.install=false", "--set", "webhook.enabled=false"]
    base += ["--set", "defaultPolicy.enabled=false"]
    helm(cluster, "install", release, str(CHART), *base)
    try:
        assert can_i(cluster, who, "delete", "pods", "-n", namespace)
        assert can_i(cluster, who, "patch", "chaosruns.aftershock.dev/status", "-n", "default")
        assert not can_i(cluster, who, "get", "secrets", "-n", namespace)
        assert not can_i(cluster, who, "list", "secrets", "--all-namespaces")
        for verb in ("create", "patch", "delete"):
            assert not can_i(cluster, who, verb, "customresourcedefinitions")
        args = client.AppsV1Api(api).read_namespaced_deployment(f"{release}-aftershock", release_namespace)
        assert "--all-namespaces" in args.spec.template.spec.containers[0].args

        helm(
            cluster,
            "upgrade",
            release,
            str(CHART),
            *base,
            "--set",
            f"watchNamespaces={{{namespace}}}",
            "--no-hooks",
        )
        assert can_i(cluster, who, "delete", "pods", "-n", namespace)
        assert not can_i(cluster, who, "delete", "pods", "-n", "default")
        container = (
            client.AppsV1Api(api)
            .read_namespaced_deployment(f"{release}-aftershock", release_namespace)
            .spec.template.spec.containers[0]
        )
        assert container.args[1:3] == ["--namespace", namespace]
    finally:
        helm(cluster, "uninstall", release, "--namespace", release_namespace, "--no-hooks", check=False)
    assert not can_i(cluster, who, "delete", "pods", "-n", namespace)


def test_the_image_entrypoint_starts_the_operator(
    cluster: Cluster, crds: None, solo_namespace: str, tmp_path: Path
) -> None:
    """The Dockerfile's exact ENTRYPOINT, with the image's virtualenv swapped for the repo's .venv."""
    from tests.unit.test_dockerfile import entrypoint

    command = [part.replace("/opt/aftershock", str(REPO / ".venv")) for part in entrypoint()]
    assert command[0] == str(REPO / ".venv" / "bin" / "aftershock") and command[1:] == ["run"]
    health_port, metrics_port = free_port(), free_port()
    log_path = tmp_path / "entrypoint.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                *command,
                "--namespace",
                solo_namespace,
                "--bind",
                "127.0.0.1",
                "--health-port",
                str(health_port),
                "--metrics-port",
                str(metrics_port),
                "--webhook-port",
                "0",
            ],
            env=dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), PYTHONUNBUFFERED="1"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    op = OperatorProcess(process, metrics_port, health_port, log_path)
    try:
        wait_for(lambda: process.poll() is not None or op.healthy(), timeout=60, message="/healthz")
        assert process.poll() is None, op.log()[-3000:]
        assert op.healthy()
        assert "aftershock_" in op.metrics()
    finally:
        op.stop(signal.SIGTERM)
    assert process.returncode in (0, -15), op.log()[-3000:]


def test_provision_rbac_lets_the_chart_grant_litmus_roles_and_only_then(
    cluster: Cluster,
    api: client.ApiClient,
    crds: None,
    release_namespace: str,
    solo_namespace: str,
    tmp_path: Path,
) -> None:
    """RBAC lets a subject grant only what it holds: the chart's ServiceAccount, with
    litmus.provisionRBAC, can create the Role of every Litmus pod experiment (no escalate verb)."""
    from kubernetes import config as kube_config

    from aftershock.core import litmus
    from aftershock.kube import Kube

    release = release_namespace
    sa = f"{release}-aftershock"
    values = base_install(
        release_namespace, f"watchNamespaces={{{solo_namespace}}}", "litmus.provisionRBAC=true"
    )
    helm(cluster, "install", release, str(CHART), *values)
    try:
        kubeconfig = token_kubeconfig(api, cluster, release_namespace, sa, tmp_path / "sa.kubeconfig")
        as_chart = Kube(kube_config.new_client_from_config(str(kubeconfig)))
        labels = {"app.kubernetes.io/managed-by": "aftershock"}
        for experiment_name in litmus.EXPERIMENTS:
            if litmus.can_provision(experiment_name):
                for obj in litmus.provisioned_objects(experiment_name, solo_namespace, labels):
                    assert as_chart.create_object(obj), (experiment_name, obj["kind"])
        # again: already there (409) is "done"
        assert not as_chart.create_object(litmus.provisioned_objects("pod-delete", solo_namespace, labels)[1])
        helm(
            cluster,
            "upgrade",
            release,
            str(CHART),
            *values,
            "--set",
            "litmus.provisionRBAC=false",
            "--no-hooks",
        )
        role = dict(litmus.provisioned_objects("pod-delete", solo_namespace, labels)[1])
        role["metadata"] = {**role["metadata"], "name": "aftershock-litmus-other"}
        with pytest.raises(client.ApiException) as info:
            as_chart.create_object(role)
        assert info.value.status == 403
    finally:
        remove_release(cluster, api, release)


def test_tenant_roles_let_an_edit_binding_write_experiments_but_never_run_status(
    cluster: Cluster, api: client.ApiClient, crds: None, release_namespace: str, namespace: str
) -> None:
    """The chart's aggregated roles: a ServiceAccount bound to the built-in edit role in its own
    namespace may create ChaosExperiments there (through the real webhook), and may not write any
    run's status (the operator's journal), any ChaosPolicy, or anything in another namespace."""
    release = release_namespace
    sa = "team"
    who = f"system:serviceaccount:{namespace}:{sa}"
    reader = f"system:serviceaccount:{namespace}:reader"
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    for name, role in ((sa, "edit"), ("reader", "view")):
        core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    assert not can_i(cluster, who, "create", "chaosexperiments.aftershock.dev", "-n", namespace)
    helm(
        cluster,
        "install",
        release,
        str(CHART),
        *base_install(release_namespace, "defaultPolicy.enabled=false"),
    )
    try:
        # the aggregation controller folds the chart's roles into edit and view
        wait_for(
            lambda: can_i(cluster, who, "create", "chaosexperiments.aftershock.dev", "-n", namespace),
            timeout=30,
            message="edit aggregates aftershock-edit",
        )
        wait_for(
            lambda: can_i(cluster, reader, "list", "chaosruns.aftershock.dev", "-n", namespace),
            timeout=30,
            message="view aggregates aftershock-view",
        )
        for verb in ("create", "update", "patch", "delete", "get", "list", "watch"):
            assert can_i(cluster, who, verb, "chaosruns.aftershock.dev", "-n", namespace), verb
            assert can_i(cluster, who, verb, "chaosexperiments.aftershock.dev", "-n", namespace), verb
        for verb in ("update", "patch"):
            for resource in ("chaosruns.aftershock.dev", "chaosexperiments.aftershock.dev"):
                assert not can_i(cluster, who, verb, resource, "--subresource", "status", "-n", namespace)
        for verb in ("create", "update", "patch", "delete"):
            assert not can_i(cluster, who, verb, "chaospolicies.aftershock.dev"), verb
            assert not can_i(cluster, reader, verb, "chaosruns.aftershock.dev", "-n", namespace), verb
        assert not can_i(cluster, who, "create", "chaosexperiments.aftershock.dev", "-n", "default")
        # and for real, as the tenant, through the webhook
        as_tenant = cluster.api_client(impersonate=who)
        body = experiment("by-the-team", app="web", extra_spec={"suspend": True})
        created = Chaos(as_tenant, namespace).create_experiment(body)
        assert created["metadata"]["name"] == "by-the-team"
        with pytest.raises(client.ApiException) as denied:
            client.CustomObjectsApi(as_tenant).patch_namespaced_custom_object_status(
                "aftershock.dev",
                "v1alpha1",
                namespace,
                "chaosexperiments",
                "by-the-team",
                {"status": {"observedGeneration": 99}},
            )
        assert denied.value.status == 403, denied.value.body
    finally:
        helm(cluster, "uninstall", release, "--namespace", release_namespace, "--no-hooks", check=False)
    wait_for(
        lambda: not can_i(cluster, who, "create", "chaosexperiments.aftershock.dev", "-n", namespace),
        timeout=30,
        message="edit no longer grants chaos once the chart is gone",
    )
