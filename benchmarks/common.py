"""What every benchmark needs: the local cluster, a namespace that opts in under a permissive
policy, and the operator as a separate process; all removed afterwards. For the scale benchmarks
also: many namespaces, kwok nodes, an operator identity the API server can attribute requests
to, the API server's metrics, and the operator's CPU and memory from /proc."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families
from tests.support.chaos import GROUP, VERSION
from tests.support.operator import OperatorProcess, start_operator
from tests.support.policies import OPT_IN, apply_policy, delete_policy, permissive
from tests.support.tools import REPO

POLICY = "benchmark"
BENCH_LABEL = "bench.aftershock.dev/id"  # on every namespace, node and pod a scale benchmark makes
T = TypeVar("T")


@dataclass
class Bench:
    kubeconfig: Path
    api: client.ApiClient
    namespace: str
    operator: OperatorProcess


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: list[float]) -> dict[str, float | int]:
    """count, p50, p99 and max of a sample, rounded to milliseconds (empty: only the count)."""
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3),
    }


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    return {
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def report(result: dict[str, Any], out: Path) -> None:
    """Write the result as JSON (benchmarks/results/) and print it."""
    text = json.dumps(result, indent=2) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text, end="")


def say(message: str) -> None:
    """Progress on stderr (stdout is the JSON result)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def kubeconfig_path() -> Path:
    return Path(
        subprocess.run(
            ["python3", str(REPO / "hack" / "cluster.py"), "kubeconfig"],
            text=True,
            capture_output=True,
            check=True,
        ).stdout.strip()
    )


def ensure_crds(kubeconfig: Path) -> None:
    """Install (or update) the repository's CRDs and wait until they are served, as the
    integration tests do: a fresh `make cluster-up` has none."""
    kubectl = [str(REPO / ".venv" / "bin" / "kubectl"), "--kubeconfig", str(kubeconfig)]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")],
        check=True,
        capture_output=True,
    )
    names = [f"crd/{plural}.{GROUP}" for plural in ("chaosexperiments", "chaosruns", "chaospolicies")]
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "--timeout=60s", *names],
        check=True,
        capture_output=True,
    )


def cluster_client(kubeconfig: Path, connections: int = 32) -> client.ApiClient:
    """An admin client with a connection pool large enough for `parallel` calls."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = connections
    return client.ApiClient(configuration)


def parallel(call: Callable[[T], object], items: Iterable[T], workers: int = 16) -> None:
    """Call `call` on every item from `workers` threads; the first error is raised."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(call, items):
            pass


def get_raw(api: client.ApiClient, path: str, **query: str) -> bytes:
    """GET `path` from the API server with the client's credentials; the body as bytes."""
    request = api.param_serialize(
        "GET", path, query_params=list(query.items()), auth_settings=["BearerToken"]
    )
    response = api.call_api(*request)
    data: bytes = response.read()
    if not 200 <= response.status < 300:
        raise ApiException(status=response.status, reason=f"GET {path}: {data[:300]!r}")
    return data


def list_json(api: client.ApiClient, path: str, **query: str) -> list[dict[str, Any]]:
    """GET a list as plain JSON: the client's model deserialisation is too slow for 5,000 pods."""
    items: list[dict[str, Any]] = json.loads(get_raw(api, path, **query))["items"]
    return items


@contextmanager
def bench_environment(prefix: str) -> Iterator[Bench]:
    kubeconfig = kubeconfig_path()
    ensure_crds(kubeconfig)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=OPT_IN)))
    apply_policy(api, permissive(POLICY))
    operator = start_operator(
        kubeconfig,
        Path(tempfile.mkdtemp()) / "operator.log",
        *("--namespace", namespace, "--identity", namespace),
        "--trust-unreviewed",  # no webhook here: what is measured is the run, not admission
    )
    others = other_operators(api, namespace)
    if others:
        say(f"WARNING: other operators are running and may act on {namespace} too: {others}")
    try:
        yield Bench(kubeconfig, api, namespace, operator)
    finally:
        # the namespace goes first, while the operator still runs and releases its finalizers
        left = delete_namespaces(api, [namespace], timeout=120)
        operator.stop()
        for name in left:  # past the timeout: release them ourselves
            strip_finalizers(api, name)
        delete_policy(api, POLICY)


# --- the operator process: CPU and memory ---------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """One reading of a process's /proc: CPU time so far, resident and peak resident memory."""

    at: float  # time.monotonic()
    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int


def usage(pid: int) -> Usage:
    at = time.monotonic()
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 (state) is fields[0]
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime, every thread included
    memory = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            memory[key] = int(value.split()[0]) * 1024  # kB
    return Usage(at, cpu, memory["VmRSS"], memory["VmHWM"])


def usage_between(before: Usage, after: Usage) -> dict[str, float]:
    """CPU as a percentage of one core over the interval, and memory at its end, in MiB."""
    seconds = after.at - before.at
    return {
        "seconds": round(seconds, 1),
        "cpu_percent_of_core": round(100 * (after.cpu_seconds - before.cpu_seconds) / seconds, 2),
        "rss_mib": round(after.rss_bytes / 2**20, 1),
        "peak_rss_mib": round(after.peak_rss_bytes / 2**20, 1),
    }


# --- the API server's metrics ---------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: client.ApiClient, names: Sequence[str], path: str = "/metrics") -> Samples:
    """The samples of the metric families `names` (as exposed, e.g. `apiserver_request_total`)
    from a /metrics endpoint reached through `api` (the API server's own by default)."""
    return parse_samples(get_raw(api, path).decode(), names)


def parse_samples(text: str, names: Sequence[str]) -> Samples:
    # only the wanted lines reach the (slow) parser: the API server exposes megabytes
    wanted = "\n".join(
        line for line in text.splitlines() if line.startswith(tuple(names)) or line.startswith("# TYPE ")
    )
    samples: Samples = {}
    for family in text_string_to_metric_families(wanted + "\n"):
        for sample in family.samples:
            if sample.name.startswith(tuple(names)):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, where: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
    """The sum of `name`'s samples whose labels satisfy `where`."""
    return sum(value for (n, labels), value in samples.items() if n == name and where(dict(labels)))


def gone(delete: Callable[[], object]) -> None:
    """Delete something; already gone is fine."""
    try:
        delete()
    except ApiException as exc:
        if exc.status != 404:
            raise


GROUP_FLOW = "flowcontrol.apiserver.k8s.io"
DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"


@contextmanager
def attributed_identity(
    api: client.ApiClient, admin_kubeconfig: Path, namespace: str, out: Path, hours: int = 6
) -> Iterator[tuple[Path, str]]:
    """A kubeconfig for a fresh ServiceAccount in `namespace` bound to cluster-admin (token valid
    for `hours`), and a FlowSchema matching exactly the ServiceAccounts of that namespace.

    apiserver_request_total has no label for the client, but API Priority and Fairness counts
    every request it dispatches per FlowSchema (`apiserver_flowcontrol_dispatched_requests_total`),
    watches included: the requests made with this kubeconfig are those counted under the yielded
    FlowSchema name. The schema sends them to the `exempt` priority level, as the admin
    certificate the other benchmarks run the operator with does, so attribution changes nothing
    about how the API server treats the operator."""
    name = f"{namespace}-operator"
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    objects = client.CustomObjectsApi(api)
    subject = {"kind": "Group", "group": {"name": f"system:serviceaccounts:{namespace}"}}
    everything = {
        "verbs": ["*"],
        "apiGroups": ["*"],
        "resources": ["*"],
        "clusterScope": True,
        "namespaces": ["*"],
    }
    schema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "matchingPrecedence": 500,
            "priorityLevelConfiguration": {"name": "exempt"},
            "rules": [
                {
                    "subjects": [subject],
                    "resourceRules": [everything],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "operator"}})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": namespace}],
        }
    )
    try:
        objects.create_cluster_custom_object(GROUP_FLOW, "v1", "flowschemas", schema)
        token = core.create_namespaced_service_account_token(
            "operator", namespace, {"spec": {"expirationSeconds": hours * 3600}}
        ).status.token
        cluster = yaml.safe_load(admin_kubeconfig.read_text())["clusters"][0]
        out.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [cluster],
                    "users": [{"name": name, "user": {"token": token}}],
                    "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
                    "current-context": name,
                }
            )
        )
        yield out, name
    finally:
        gone(lambda: objects.delete_cluster_custom_object(GROUP_FLOW, "v1", "flowschemas", name))
        gone(lambda: rbac.delete_cluster_role_binding(name))


# --- what a scale benchmark creates ---------------------------------------------------------


def kwok_node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A fake node as hack/cluster.py makes them: kwok manages nodes with this annotation."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                **labels,
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
        },
    }


def _ready_node(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@contextmanager
def kwok_nodes(api: client.ApiClient, bench_id: str, count: int, timeout: float = 300) -> Iterator[list[str]]:
    """`count` kwok nodes labelled with the benchmark's id, Ready; deleted afterwards."""
    core = client.CoreV1Api(api)
    names = [f"bench-{bench_id}-node-{i:03d}" for i in range(count)]
    try:
        parallel(
            lambda n: core.create_node(kwok_node(n, {BENCH_LABEL: bench_id}), _preload_content=False), names
        )
        deadline = time.monotonic() + timeout
        while True:
            nodes = list_json(api, "/api/v1/nodes", labelSelector=f"{BENCH_LABEL}={bench_id}")
            if sum(_ready_node(n) for n in nodes) == count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {sum(_ready_node(n) for n in nodes)} of {count} kwok nodes Ready")
            time.sleep(1)
        yield names
    finally:
        core.delete_collection_node(label_selector=f"{BENCH_LABEL}={bench_id}")


def strip_finalizers(api: client.ApiClient, namespace: str) -> None:
    """Release our finalizers in `namespace`: for objects no operator will handle any more."""
    objects = client.CustomObjectsApi(api)
    for plural in ("chaosruns", "chaosexperiments"):
        for item in objects.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
            try:
                objects.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise


def delete_namespaces(api: client.ApiClient, names: Sequence[str], timeout: float) -> list[str]:
    """Delete `names` and wait until they are gone (finalizers are the running operator's to
    remove; past half the timeout they are stripped). Returns the names still present."""
    core = client.CoreV1Api(api)

    def delete(name: str) -> None:
        try:
            core.delete_namespace(name, propagation_policy="Background", _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    parallel(delete, names)
    deadline = time.monotonic() + timeout
    stripped = False
    wanted = set(names)
    while True:
        left = sorted(wanted & {n["metadata"]["name"] for n in list_json(api, "/api/v1/namespaces")})
        if not left or time.monotonic() > deadline:
            return left
        if not stripped and time.monotonic() > deadline - timeout / 2:
            say(f"{len(left)} namespaces still terminating; releasing our finalizers in them")
            for name in left:
                strip_finalizers(api, name)
            stripped = True
        time.sleep(2)


def create_namespaces(api: client.ApiClient, names: Sequence[str], labels: dict[str, str]) -> None:
    core = client.CoreV1Api(api)
    parallel(
        lambda n: core.create_namespace({"metadata": {"name": n, "labels": labels}}, _preload_content=False),
        names,
    )


def ready_pod_count(api: client.ApiClient, selector: str) -> int:
    pods = list_json(api, "/api/v1/pods", labelSelector=selector)
    return sum(
        1
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    )


def other_operators(api: client.ApiClient, own_namespace: str) -> list[str]:
    """Live aftershock operators outside `own_namespace` (their Leases renewed in the last
    minute): if their scope overlaps the benchmark's, they act on its objects too."""
    leases = list_json(
        api, "/apis/coordination.k8s.io/v1/leases", labelSelector="aftershock.dev/lease=operator"
    )
    now = time.time()
    live = []
    for lease in leases:
        spec = lease.get("spec") or {}
        renewed = spec.get("renewTime") or spec.get("acquireTime")
        if lease["metadata"]["namespace"] == own_namespace or not renewed:
            continue
        moment = datetime.fromisoformat(renewed.replace("Z", "+00:00")).timestamp()
        if now - moment < 60:
            live.append(f"{spec.get('holderIdentity')} ({lease['metadata']['namespace']})")
    return live


def new_id() -> str:
    return uuid.uuid4().hex[:6]


def operator_log_tail(operator: OperatorProcess, lines: int = 60) -> str:
    """The operator's last log lines without kopf's boxes, for a failure report."""
    kept = [line for line in operator.log().splitlines() if not line.startswith(("│", "╭", "╰"))]
    return "\n".join(kept[-lines:])


def temp_log(name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix="aftershock-bench-")) / name
