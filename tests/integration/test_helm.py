"""The Helm chart on the real API server: its manifests are accepted, it installs, and its RBAC is
both sufficient (an operator holding only the chart's ServiceAccount token carries out a pod-delete
run) and least-privilege (kubectl auth can-i as that ServiceAccount)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.net import free_port
from tests.support.operator import OperatorProcess, start_operator
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
    rendered = helm(cluster, *args, "--api-versions", "aftershock.dev/v1alpha1/ChaosPolicy").stdout
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert {
        "CustomResourceDefinition",
        "Deployment",
        "ValidatingWebhookConfiguration",
        "ChaosPolicy",
    } <= kinds
    result = dry_run(cluster, rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deployment.apps/rel-aftershock serverside-applied (server dry run)" in result.stdout
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/rel-aftershock" in result.stdout
    if mode == "namespaced":
        roles = [
            line for line in result.stdout.splitlines() if line.startswith("role.rbac.authorization.k8s.io/")
        ]
        assert len(roles) == 2, result.stdout


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
        "--namespace",
        release_namespace,
        "--set",
        "crds.install=false",  # the suite owns the CRDs
        "--set",
        "webhook.enabled=false",  # its Service would have no serving pod here
        "--set",
        f"watchNamespaces={{{solo_namespace}}}",
        "--set",
        "defaultPolicy.maxActiveRuns=100",
    )
    try:
        objects = client.CustomObjectsApi(api)
        policy = objects.get_cluster_custom_object(
            "aftershock.dev", "v1alpha1", "chaospolicies", f"{sa}-default"
        )
        assert policy["spec"]["blastRadius"]["maxPodsPercent"] == 50

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
        assert not can_i(cluster, who, "create", "chaospolicies.aftershock.dev")

        # the operator, authenticated only by the chart's ServiceAccount token
        kubeconfig = token_kubeconfig(api, cluster, release_namespace, sa, tmp_path / "sa.kubeconfig")
        op = start_operator(
            kubeconfig,
            tmp_path / "operator.log",
            "--namespace",
            solo_namespace,
            "--webhook-port",
            "0",
            "--sweep-interval",
            "2",
            "--operator-namespace",
            release_namespace,
        )
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
        assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    finally:
        if op is not None:
            op.stop()
        helm(cluster, "uninstall", release, "--namespace", release_namespace, check=False)
    rbac = client.RbacAuthorizationV1Api(api)
    assert not rbac.list_cluster_role(label_selector=f"app.kubernetes.io/instance={release}").items
    assert not rbac.list_namespaced_role(solo_namespace).items


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

        helm(cluster, "upgrade", release, str(CHART), *base, "--set", f"watchNamespaces={{{namespace}}}")
        assert can_i(cluster, who, "delete", "pods", "-n", namespace)
        assert not can_i(cluster, who, "delete", "pods", "-n", "default")
        container = (
            client.AppsV1Api(api)
            .read_namespaced_deployment(f"{release}-aftershock", release_namespace)
            .spec.template.spec.containers[0]
        )
        assert container.args[1:3] == ["--namespace", namespace]
    finally:
        helm(cluster, "uninstall", release, "--namespace", release_namespace, check=False)
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
