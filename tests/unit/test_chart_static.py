"""The Helm chart, rendered and linted offline: what each mode produces, what the schema refuses,
and that its copy of the CRDs is the repository's."""

from __future__ import annotations

import functools
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import REPO, bin_dir

CHART = REPO / "charts" / "aftershock"
NAMESPACED_VALUES = CHART / "values-namespaced.yaml"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir("helm") / "helm"), *args], text=True, capture_output=True, check=check, timeout=120
    )


@functools.cache
def _template(*args: str) -> str:
    """helm template's output, once per distinct set of arguments (each run costs about a second)."""
    return helm("template", "rel", str(CHART), "--namespace", "chaos-system", *args).stdout


def render(*args: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(_template(*args)) if doc]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, [d["kind"] for d in docs]
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return result


def all_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for d in docs if d["kind"] in ("Role", "ClusterRole") for rule in d["rules"]]


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def is_tenant_role(doc: dict[str, Any]) -> bool:
    """The aggregated roles for people (tenant-rbac.yaml), not the operator's own."""
    return any(k.startswith(AGGREGATE) for k in (doc["metadata"].get("labels") or {}))


def operator_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if not is_tenant_role(d)]


def test_chart_crds_are_the_repository_crds() -> None:
    ours = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    copies = sorted(p.name for p in (CHART / "files" / "crds").glob("*.yaml"))
    assert ours == copies, "charts/aftershock/files/crds must hold exactly crds/*.yaml (cp crds/*.yaml ...)"
    for name in ours:
        assert (CHART / "files" / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), (
            f"charts/aftershock/files/crds/{name} differs from crds/{name}: copy it again"
        )


@pytest.mark.parametrize("values", [None, NAMESPACED_VALUES], ids=["default", "namespaced"])
def test_helm_lint_strict_passes(values: Path | None) -> None:
    args = ["-f", str(values)] if values else []
    result = helm("lint", "--strict", str(CHART), *args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--set-string", "replicaCount=two"], "replicaCount"),
        (["--set", "replicaCount=3"], "replicaCount"),
        (["--set", "noSuchKey=1"], "noSuchKey"),
        (["--set", "webhook.certManager.nope=true"], "nope"),
        (["--set", "watchNamespaces=shop"], "watchNamespaces"),
        (["--set", "webhook.failurePolicy=Sometimes"], "failurePolicy"),
        (["--set", "defaultPolicy.maxPodsPercent=150"], "maxPodsPercent"),
        (["--set-string", "nodeFaults.enabled=yes"], "nodeFaults"),
        (["--set", "nodeFaults.drain=true"], "drain"),
    ],
    ids=[
        "string-replicas",
        "two-replicas",
        "unknown-key",
        "unknown-nested-key",
        "namespaces-not-list",
        "enum",
        "range",
        "node-faults-not-bool",
        "node-faults-unknown-key",
    ],
)
def test_schema_refuses_bad_values_with_a_clear_message(override: list[str], expected: str) -> None:
    for command in (["lint", "--strict", str(CHART)], ["template", "rel", str(CHART)]):
        result = helm(*command, *override, check=False)
        assert result.returncode != 0, result.stdout
        output = result.stdout + result.stderr
        assert "values don't meet the specifications of the schema" in output, output
        assert expected in output, output


def test_all_namespaces_mode_cluster_role_and_flag() -> None:
    docs = render()
    # the only Role: the operator's own Deployment and pods, in its namespace (for the cleanup hook)
    roles = [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Role"]
    assert roles == [("chaos-system", "rel-aftershock-self")]
    args = container(docs)["args"]
    assert args[0] == "run" and "--all-namespaces" in args and "--namespace" not in args
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rel-aftershock", "namespace": "chaos-system"}
    ]
    resources = {r for rule in one(operator_docs(docs), "ClusterRole")["rules"] for r in rule["resources"]}
    assert {"pods", "chaosruns/status", "networkpolicies", "subjectaccessreviews"} <= resources


def test_namespaced_mode_role_per_namespace_and_flags() -> None:
    docs = render("-f", str(NAMESPACED_VALUES))
    watched = yaml.safe_load(NAMESPACED_VALUES.read_text())["watchNamespaces"]
    roles = [d for d in docs if d["kind"] == "Role" and not d["metadata"]["name"].endswith("-self")]
    bindings = [d for d in docs if d["kind"] == "RoleBinding" and not d["metadata"]["name"].endswith("-self")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(watched)
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(watched)
    args = container(docs)["args"]
    assert "--all-namespaces" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == watched
    # the ClusterRole reads only cluster-scoped kinds (nothing namespaced, cluster-wide), creates
    # SubjectAccessReviews and manages only the default ChaosPolicy
    for rule in one(operator_docs(docs), "ClusterRole")["rules"]:
        assert set(rule["resources"]) <= {
            "chaospolicies",
            "namespaces",
            "subjectaccessreviews",
            "customresourcedefinitions",
        }, rule
        if rule["resources"] == ["subjectaccessreviews"]:
            assert rule["verbs"] == ["create"]
        elif rule["resources"] == ["chaospolicies"] and set(rule["verbs"]) & {"update", "delete"}:
            assert rule["resourceNames"] == ["rel-aftershock-default"]
        elif rule["resources"] == ["chaospolicies"] and rule["verbs"] == ["create"]:
            pass
        else:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
    webhook = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert webhook["namespaceSelector"]["matchExpressions"][0]["values"] == watched


@pytest.mark.parametrize("values", [None, NAMESPACED_VALUES], ids=["default", "namespaced"])
def test_rbac_reads_one_secret_and_grants_no_wildcards(values: Path | None) -> None:
    """The only Secret the operator may read is the review key, in its own namespace (the -self
    Role); it may create it there, and never list, watch or change any Secret."""
    docs = render(*(["-f", str(values)] if values else []))
    secret_rules = []
    for doc in docs:
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            if rule["apiGroups"] == ["apiextensions.k8s.io"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}
            if "secrets" in rule["resources"]:
                assert (doc["kind"], doc["metadata"]["name"]) == ("Role", "rel-aftershock-self"), doc
                secret_rules.append(rule)
    assert secret_rules == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["aftershock-review-key"],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]


def test_both_webhook_configurations_and_the_unsafe_opt_out() -> None:
    docs = render()
    mutating = one(docs, "MutatingWebhookConfiguration")["webhooks"]
    assert sorted(w["clientConfig"]["service"]["path"] for w in mutating) == [
        "/review-experiments",
        "/review-runs",
    ]
    assert all(w["failurePolicy"] == "Fail" and w["matchConditions"] for w in mutating)
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--trust-unreviewed" not in args
    trusting = one(render("--set", "webhook.trustUnreviewedAuthors=true"), "Deployment")
    assert "--trust-unreviewed" in trusting["spec"]["template"]["spec"]["containers"][0]["args"]


def test_restricted_pod_security_probes_and_env() -> None:
    docs = render()
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(docs)
    sc = c["securityContext"]
    assert sc["runAsUser"] == 65532 and sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert "secret" in volumes[mounts["/certs"]]
    health_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "health")
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"AFTERSHOCK_OPERATOR_NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}
    args = c["args"]
    expected = {
        "--metrics-port": "8080",
        "--health-port": str(health_port),
        "--webhook-port": "9443",
        "--webhook-cert-dir": "/certs",
        "--webhook-config": "",
    }
    for flag, value in expected.items():
        assert args[args.index(flag) + 1] == value, (flag, args)
    for d in docs:
        labels = d["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by"):
            assert key in labels, (d["kind"], labels)


def test_webhook_paths_match_the_kopf_handler_ids() -> None:
    source = (REPO / "operator" / "aftershock" / "handlers" / "admission.py").read_text()
    handlers = {
        m["id"]: (m["plural"], sorted(re.findall(r'"([A-Z]+)"', m["ops"])))
        for m in re.finditer(
            r'kopf\.on\.validate\(GROUP, VERSION, "(?P<plural>\w+)", operations=\[(?P<ops>[^\]]*)\], id="(?P<id>\w+)"\)',
            source,
        )
    }
    assert set(handlers) == {"experiments", "runs"}
    config = one(render(), "ValidatingWebhookConfiguration")
    seen = {}
    for hook in config["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        handler_id = path.lstrip("/")
        assert hook["name"] == f"{handler_id}.aftershock.dev"
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert hook["clientConfig"]["caBundle"]
        rule = hook["rules"][0]
        seen[handler_id] = (rule["resources"][0], sorted(rule["operations"]))
    assert seen == handlers


def test_helm_generated_certificate_matches_the_service_and_ca() -> None:
    from cryptography import x509

    docs = render()
    secret = one(docs, "Secret")
    assert set(secret["data"]) == {"ca.crt", "tls.crt", "tls.key"}
    import base64

    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    assert "rel-aftershock-webhook.chaos-system.svc" in names
    cert.verify_directly_issued_by(ca)
    bundle = one(docs, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
    assert bundle == secret["data"]["ca.crt"]


def test_cert_manager_mode_uses_a_certificate_and_ca_injection() -> None:
    docs = render("--set", "webhook.certManager.enabled=true")
    assert "Secret" not in {d["kind"] for d in docs}
    certificate = one(docs, "Certificate")
    assert certificate["spec"]["secretName"] == "rel-aftershock-webhook-tls"
    assert one(docs, "Issuer")["spec"] == {"selfSigned": {}}
    config = one(docs, "ValidatingWebhookConfiguration")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        "chaos-system/rel-aftershock-webhook"
    )
    assert all("caBundle" not in h["clientConfig"] for h in config["webhooks"])
    # an existing issuer instead of the chart's own
    docs = render(
        "--set",
        "webhook.certManager.enabled=true",
        "--set",
        "webhook.certManager.issuerRef.name=corp-ca",
        "--set",
        "webhook.certManager.issuerRef.kind=ClusterIssuer",
    )
    assert "Issuer" not in {d["kind"] for d in docs}
    assert one(docs, "Certificate")["spec"]["issuerRef"]["kind"] == "ClusterIssuer"


def test_crd_toggles_install_and_keep() -> None:
    crds = [d for d in render() if d["kind"] == "CustomResourceDefinition"]
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "chaosexperiments.aftershock.dev",
        "chaospolicies.aftershock.dev",
        "chaosruns.aftershock.dev",
    ]
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "aftershock"
        source = yaml.safe_load((REPO / "crds" / f"{crd['metadata']['name']}.yaml").read_text())
        assert crd["spec"] == source["spec"]
    unkept = [d for d in render("--set", "crds.keep=false") if d["kind"] == "CustomResourceDefinition"]
    assert unkept and all(
        "helm.sh/resource-policy" not in (c["metadata"].get("annotations") or {}) for c in unkept
    )
    assert not [d for d in render("--set", "crds.install=false") if d["kind"] == "CustomResourceDefinition"]


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_default_policy_is_a_file_the_operator_applies() -> None:
    from aftershock.api.policy import ChaosPolicySpec

    # Helm never renders the ChaosPolicy itself (it cannot, in the release that creates the CRD)
    docs = render("--api-versions", "aftershock.dev/v1alpha1/ChaosPolicy")
    assert "ChaosPolicy" not in {d["kind"] for d in docs}
    config = one(docs, "ConfigMap")
    spec = yaml.safe_load(config["data"]["policy.yaml"])
    ChaosPolicySpec.model_validate(spec)  # what the operator will check at start
    assert spec["namespaces"]["selector"] == {"matchLabels": {"aftershock.dev/chaos": "enabled"}}
    assert spec["blastRadius"]["maxPodsPercent"] == 50
    assert spec["maxDuration"] == "1h"
    assert "chaos-system" in spec["namespaces"]["deny"]
    c = container(docs)
    assert flag(c["args"], "--default-policy-name") == "rel-aftershock-default"
    path = flag(c["args"], "--default-policy-file")
    assert path is not None
    mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(
        v
        for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == mount["name"]
    )
    assert volume["configMap"]["name"] == config["metadata"]["name"]
    assert path.endswith("/policy.yaml")
    # the operator may create policies only while the chart configures one; replace and delete
    # only its own
    policy_rules = [r for r in all_rules(operator_docs(docs)) if r["resources"] == ["chaospolicies"]]
    assert {"resourceNames": ["rel-aftershock-default"], "verbs": ["update", "delete"]}.items() <= next(
        r for r in policy_rules if "update" in r["verbs"]
    ).items()
    assert any(r["verbs"] == ["create"] and "resourceNames" not in r for r in policy_rules)


def test_a_changed_default_policy_restarts_the_operator() -> None:
    def checksum(*args: str) -> str:
        pod = one(render(*args), "Deployment")["spec"]["template"]["metadata"]
        return str(pod["annotations"]["checksum/default-policy"])

    assert checksum() == checksum("--set", "operator.verbose=true")
    assert checksum() != checksum("--set", "defaultPolicy.maxPodsPercent=20")


def test_default_policy_turned_off() -> None:
    docs = render("--set", "defaultPolicy.enabled=false")
    assert "ConfigMap" not in {d["kind"] for d in docs}
    args = container(docs)["args"]
    # the name stays, so the operator deletes the policy it created before
    assert flag(args, "--default-policy-name") == "rel-aftershock-default"
    assert "--default-policy-file" not in args
    assert not any("create" in r["verbs"] for r in all_rules(docs) if r["resources"] == ["chaospolicies"])


def hooks(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["annotations"]["helm.sh/hook"]: d for d in docs if d["kind"] == "Job"}


def test_cleanup_hook_runs_before_uninstall_as_the_operator() -> None:
    docs = render()
    jobs = hooks(docs)
    assert set(jobs) == {"pre-delete"}  # all namespaces: an upgrade never drops one
    job = jobs["pre-delete"]
    assert (
        job["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "rel-aftershock" and pod["restartPolicy"] == "Never"
    c = pod["containers"][0]
    assert c["image"] == container(docs)["image"]
    assert c["args"] == [
        "release",
        "--deployment",
        "chaos-system/rel-aftershock",
        "--timeout",
        "120",
        "--default-policy-name",
        "rel-aftershock-default",
    ]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True
    # it may scale exactly the operator's own Deployment
    deployment_rules = [
        r for r in all_rules(docs) if r["resources"] == ["deployments"] and "patch" in r["verbs"]
    ]
    assert [r["resourceNames"] for r in deployment_rules] == [["rel-aftershock"]]
    assert not hooks(render("--set", "cleanupHook.enabled=false"))


def test_namespaced_upgrade_hook_keeps_the_new_namespaces() -> None:
    docs = render("-f", str(NAMESPACED_VALUES))
    watched = yaml.safe_load(NAMESPACED_VALUES.read_text())["watchNamespaces"]
    args = hooks(docs)["pre-upgrade"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--keep-namespace"] == watched


def test_webhook_judges_only_new_objects_and_spec_changes() -> None:
    for hook in one(render(), "ValidatingWebhookConfiguration")["webhooks"]:
        (condition,) = hook["matchConditions"]
        assert "object.spec != oldObject.spec" in condition["expression"]
        assert "request.operation != 'UPDATE'" in condition["expression"]


def test_optional_parts_toggle() -> None:
    kinds = {d["kind"] for d in render()}
    assert "ServiceMonitor" not in kinds
    monitor = one(render("--set", "metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    docs = render("--set", "webhook.enabled=false")
    assert not {"ValidatingWebhookConfiguration", "Secret"} & {d["kind"] for d in docs}
    args = container(docs)["args"]
    assert args[args.index("--webhook-port") + 1] == "0" and "--webhook-cert-dir" not in args


def test_litmus_rbac_is_there_only_when_enabled() -> None:
    def litmus_rules(*args: str) -> list[dict[str, Any]]:
        return [r for r in all_rules(render(*args)) if r["apiGroups"] == ["litmuschaos.io"]]

    rules = {tuple(r["resources"]): set(r["verbs"]) for r in litmus_rules()}
    assert rules == {
        ("chaosengines",): {"get", "list", "watch", "create", "patch", "delete"},
        ("chaosresults",): {"get", "delete"},
        ("chaosexperiments",): {"get"},
    }
    assert not litmus_rules("--set", "litmus.enabled=false")


def covers(rules: list[dict[str, Any]], needed: dict[str, Any]) -> bool:
    """Whether `rules` grant every verb of `needed` on every resource of it (no resourceNames)."""
    for group in needed["apiGroups"]:
        for resource in needed["resources"]:
            for verb in needed["verbs"]:
                if not any(
                    group in r["apiGroups"]
                    and resource in r["resources"]
                    and verb in r["verbs"]
                    and "resourceNames" not in r
                    for r in rules
                ):
                    return False
    return True


@pytest.mark.parametrize("values", [None, NAMESPACED_VALUES], ids=["default", "namespaced"])
def test_provision_rbac_holds_everything_the_provisioned_roles_grant(values: Path | None) -> None:
    from aftershock.core import litmus

    extra = ["-f", str(values)] if values else []
    docs = render(*extra, "--set", "litmus.provisionRBAC=true")
    rules = all_rules(docs)
    for experiment in litmus.EXPERIMENTS:
        if litmus.can_provision(experiment):
            for needed in litmus.rules_for(experiment):
                assert covers(rules, needed), (experiment, needed)
    for kind in ("roles", "rolebindings"):
        assert covers(
            rules, {"apiGroups": ["rbac.authorization.k8s.io"], "resources": [kind], "verbs": ["create"]}
        )
    # an aftershock-made Role from an earlier version is brought up to date
    assert covers(
        rules, {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["patch"]}
    )
    # off by default: no pods/exec, no RBAC writes
    default = all_rules(render(*extra))
    assert not covers(default, {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]})
    assert not any("roles" in r["resources"] for r in default)


NODE_FAULT_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "patch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
    {
        "apiGroups": ["apps"],
        "resources": ["replicasets", "deployments", "statefulsets", "daemonsets"],
        "verbs": ["get"],
    },
    # a collateral Deployment is followed until it recovered: its pods are found through its
    # ReplicaSets (engines/workloads.py owner_uids), in namespaces the operator may not watch
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["list"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["list"]},
]


@pytest.mark.parametrize("values", [None, NAMESPACED_VALUES], ids=["default", "namespaced"])
def test_node_fault_rbac_is_cluster_wide_and_only_when_enabled(values: Path | None) -> None:
    from aftershock.engines.node_drain import EVICT_ANYWHERE
    from aftershock.engines.node_marks import PATCH_NODES

    extra = ["-f", str(values)] if values else []
    off = all_rules(operator_docs(render(*extra)))
    assert not any({"nodes", "pods/eviction"} & set(r["resources"]) for r in off), off
    result = helm("lint", "--strict", str(CHART), *extra, "--set", "nodeFaults.enabled=true", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    docs = render(*extra, "--set", "nodeFaults.enabled=true")
    cluster_wide = grants_in(docs, None)  # the ClusterRole: a node's pods may be in any namespace
    for needed in NODE_FAULT_RULES:
        assert covers(cluster_wide, needed), needed
    # what the drain itself does (engines/node_marks.py, engines/node_drain.py), as the operator
    for permission in (PATCH_NODES, EVICT_ANYWHERE):
        resource = (
            f"{permission.resource}/{permission.subresource}"
            if permission.subresource
            else permission.resource
        )
        needed = {"apiGroups": [permission.group], "resources": [resource], "verbs": [permission.verb]}
        assert covers(cluster_wide, needed), permission
    # nothing more than that: no deleting pods or nodes, no writes to workloads, in either mode
    added = Counter(map(str, all_rules(operator_docs(docs)))) - Counter(map(str, off))
    assert added == Counter(map(str, NODE_FAULT_RULES)), added
    for rule in NODE_FAULT_RULES:
        assert set(rule["verbs"]) <= {"get", "list", "patch", "create"}, rule
        if "patch" in rule["verbs"]:
            assert rule["resources"] == ["nodes"], rule
        if "create" in rule["verbs"]:
            assert rule["resources"] == ["pods/eviction"], rule


def test_node_faults_are_off_by_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["nodeFaults"] == {"enabled": False}


def grants_in(docs: list[dict[str, Any]], namespace: str | None) -> list[dict[str, Any]]:
    """The rules the operator holds in `namespace` (None: cluster-wide, the ClusterRole only)."""
    return [
        rule
        for d in docs
        if (d["kind"] == "ClusterRole" and not is_tenant_role(d))
        or (d["kind"] == "Role" and namespace == d["metadata"]["namespace"])
        for rule in d["rules"]
    ]


@pytest.mark.parametrize("values", [None, NAMESPACED_VALUES], ids=["default", "namespaced"])
def test_the_shared_cache_may_list_and_watch_what_it_reads_where_it_reads_it(values: Path | None) -> None:
    from aftershock.cluster.kinds import DEFAULT_KINDS, KINDS, plan

    docs = render(*(["-f", str(values)] if values else []))
    scope = tuple(yaml.safe_load(values.read_text())["watchNamespaces"]) if values else None
    for partition in plan(DEFAULT_KINDS, scope, lease_namespace="chaos-system"):
        spec = KINDS[partition.kind]
        needed = {"apiGroups": [spec.group], "resources": [spec.plural], "verbs": ["list", "watch"]}
        assert covers(grants_in(docs, partition.namespace), needed), partition
    # Leases: the operator's own, in its namespace only, never cluster-wide
    leases = [
        (d["kind"], d["metadata"].get("namespace"), r)
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
        for r in d["rules"]
        if "leases" in r["resources"]
    ]
    assert [(kind, ns) for kind, ns, _ in leases] == [("Role", "chaos-system")], leases
    assert set(leases[0][2]["verbs"]) == {"get", "list", "watch", "create", "update", "patch", "delete"}


# --- tenant roles ---------------------------------------------------------------------------------


def tenant_roles(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole" and is_tenant_role(d)}


@pytest.mark.parametrize("values", [None, NAMESPACED_VALUES], ids=["default", "namespaced"])
def test_tenant_roles_aggregate_into_the_built_in_roles(values: Path | None) -> None:
    roles = tenant_roles(render(*(["-f", str(values)] if values else [])))
    assert set(roles) == {"rel-aftershock-edit", "rel-aftershock-view"}
    edit, view = roles["rel-aftershock-edit"], roles["rel-aftershock-view"]
    assert {k: v for k, v in edit["metadata"]["labels"].items() if k.startswith(AGGREGATE)} == {
        f"{AGGREGATE}admin": "true",
        f"{AGGREGATE}edit": "true",
    }
    assert {k: v for k, v in view["metadata"]["labels"].items() if k.startswith(AGGREGATE)} == {
        f"{AGGREGATE}view": "true"
    }
    # edit: write experiments and runs; view: read them (and the policies)
    writes = {"create", "update", "patch", "delete"}
    for resource in ("chaosexperiments", "chaosruns"):
        needed = {"apiGroups": ["aftershock.dev"], "resources": [resource], "verbs": [*sorted(writes), "get"]}
        assert covers(edit["rules"], needed), resource
        read = {"apiGroups": ["aftershock.dev"], "resources": [resource], "verbs": ["get", "list", "watch"]}
        assert covers(view["rules"], read), resource
    assert not any(set(r["verbs"]) - {"get", "list", "watch"} for r in view["rules"]), view["rules"]


def test_tenant_roles_never_grant_status_policies_or_wildcards() -> None:
    """RBAC's `*` covers subresources: a tenant with chaosruns/status could write the journal the
    operator acts on. And the guardrails (ChaosPolicies) are never a tenant's to write."""
    roles = tenant_roles(render())
    assert roles
    for name, role in roles.items():
        for rule in role["rules"]:
            assert rule["apiGroups"] == ["aftershock.dev"], (name, rule)
            for field in ("apiGroups", "resources", "verbs"):
                assert not any("*" in item for item in rule[field]), (name, rule)
            assert not any("/" in resource for resource in rule["resources"]), (name, rule)
            assert "resourceNames" not in rule, (name, rule)
            if "chaospolicies" in rule["resources"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, (name, rule)


def test_tenant_roles_can_be_switched_off() -> None:
    assert not tenant_roles(render("--set", "rbac.tenantRoles=false"))
    assert not tenant_roles(render("--set", "rbac.create=false"))
    assert tenant_roles(render("--set", "rbac.tenantRoles=true"))


def test_default_policy_max_duration() -> None:
    def policy(*args: str) -> dict[str, Any]:
        spec: dict[str, Any] = yaml.safe_load(one(render(*args), "ConfigMap")["data"]["policy.yaml"])
        return spec

    assert policy("--set", "defaultPolicy.maxDuration=30m")["maxDuration"] == "30m"
    assert "maxDuration" not in policy("--set", "defaultPolicy.maxDuration=")
    result = helm("template", "rel", str(CHART), "--set", "defaultPolicy.maxDuration=an hour", check=False)
    assert result.returncode != 0 and "maxDuration" in result.stderr, result.stderr


def test_default_policy_endpoints_allow() -> None:
    def policy(*args: str) -> dict[str, Any]:
        spec: dict[str, Any] = yaml.safe_load(one(render(*args), "ConfigMap")["data"]["policy.yaml"])
        return spec

    assert "endpoints" not in policy()  # by default probes reach only the target namespace's Services
    allowed = policy(
        "--set-json", 'defaultPolicy.endpointsAllow=["prometheus.monitoring.svc:9090","10.0.0.0/8"]'
    )
    assert allowed["endpoints"] == {"allow": ["prometheus.monitoring.svc:9090", "10.0.0.0/8"]}
    from aftershock.api.policy import ChaosPolicySpec

    assert ChaosPolicySpec.model_validate(allowed).endpoints.allow == [
        "prometheus.monitoring.svc:9090",
        "10.0.0.0/8",
    ]
