"""No privilege through Litmus, the pure parts: every catalogue parameter has a shape that keeps
shell syntax out (the CRD's CEL rules and the model say the same), withheld parameters are refused,
probe types follow the policies, and admission asks the API server exactly what a probe or a
chaos ServiceAccount would do."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aftershock.api import litmus_catalog as catalog
from aftershock.api.cel import VALIDATIONS_KEY
from aftershock.api.crdgen import build_crd
from aftershock.api.experiment import ChaosExperiment, Fault
from aftershock.api.policy import ChaosPolicySpec
from aftershock.core import litmus_params
from aftershock.engines.admission import Refused, check_litmus

HOSTILE = (
    "eth0; reboot",
    "$(id)",
    "`id`",
    "a'b",
    "a\nb",
    "a && b",
    "a>b",
    "a\\b",
    "x$HOME",
)


@pytest.mark.parametrize("value", HOSTILE)
def test_no_parameter_accepts_shell_syntax(value: str) -> None:
    accepted = sorted(name for name, p in catalog.param_kinds().items() if p.accepts(value))
    assert accepted == []


def test_only_the_destination_lists_accept_a_pipe_and_only_before_a_port() -> None:
    pipes = sorted(
        name for name, p in catalog.param_kinds().items() if p.accepts("10.0.0.1|80") or p.accepts("host|80")
    )
    assert pipes == ["DESTINATION_HOSTS", "DESTINATION_IPS"]
    hosts = catalog.param_kinds()["DESTINATION_HOSTS"]
    assert hosts.accepts("db.shop.svc.cluster.local|5432,cache|6379|6380")
    assert not hosts.accepts("db|id") and not hosts.accepts("db||80")
    ips = catalog.param_kinds()["DESTINATION_IPS"]
    assert ips.accepts("10.0.0.0/8,10.1.2.3|5432,fd00::1")
    assert not ips.accepts("10.0.0.1|$(id)") and not ips.accepts("10.0.0.1 10.0.0.2")


def test_target_container_cannot_add_targets_to_litmus_target_list() -> None:
    """litmus-go packs it into TARGETS as pod:namespace:container;...: ':' or ';' would add a target."""
    container = catalog.param_kinds()["TARGET_CONTAINER"]
    assert container.accepts("nginx")
    assert not container.accepts("nginx;other-pod:kube-system:etcd") and not container.accepts("a:b")


def test_counts_are_bounded() -> None:
    latency = catalog.param_kinds()["NETWORK_LATENCY"]
    assert latency.accepts("0") and latency.accepts(str(catalog.MAX_MS))
    assert not latency.accepts(str(catalog.MAX_MS + 1))
    port = catalog.param_kinds()["TARGET_SERVICE_PORT"]
    assert not port.accepts("0") and port.accepts("1") and port.accepts("65535") and not port.accepts("65536")
    assert "from 1 to 65535" in catalog.value_message(port)


def test_every_shell_bound_parameter_is_not_free_text_unless_quoted() -> None:
    """TEXT is for values litmus-go quotes; unquoted ones have tighter kinds."""
    quoted = {"RESPONSE_BODY", "HEADERS_MAP", "TARGET_HOSTNAMES", "SPOOF_MAP"}
    text = {name for name, p in catalog.param_kinds().items() if p.kind is catalog.Kind.TEXT and p.shell}
    assert text == quoted


def _litmus_rules() -> list[dict[str, str]]:
    crd = build_crd(ChaosExperiment)
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    litmus = schema["properties"]["spec"]["properties"]["fault"]["properties"]["litmus"]
    rules: list[dict[str, str]] = litmus[VALIDATIONS_KEY]
    return rules


def test_the_crd_has_a_pattern_rule_for_every_parameter_and_a_bounds_rule_for_every_bounded_one() -> None:
    rules = [r["rule"] for r in _litmus_rules()]
    for name, p in catalog.param_kinds().items():
        mine = [r for r in rules if f"self.env['{name}'].matches(" in r]
        assert mine, name
        assert any(f"r'{p.pattern}'" in r for r in mine), name
        if p.bounded:
            assert any(f"int(self.env['{name}']) <= {p.maximum}" in r for r in mine), name
    withheld = [r for r in _litmus_rules() if "'LIB_IMAGE'" in r["rule"] and "exists" in r["rule"]]
    assert withheld and "no ChaosPolicy reviews" in withheld[0]["message"]


def _fault(experiment: str, **env: str) -> dict[str, Any]:
    return {
        "duration": "30s",
        "litmus": {"experiment": experiment, "chaosServiceAccount": "litmus", "env": env},
    }


@pytest.mark.parametrize(
    ("experiment", "env", "words"),
    [
        (
            "pod-network-latency",
            {"NETWORK_INTERFACE": "eth0; reboot"},
            "NETWORK_INTERFACE must be a network interface",
        ),
        (
            "container-kill",
            {"SOCKET_PATH": "/run/x.sock && rm -rf /"},
            "SOCKET_PATH must be an absolute path",
        ),
        ("pod-http-modify-body", {"RESPONSE_BODY": "$(cat /etc/shadow)"}, "Litmus passes it to a shell"),
        ("pod-http-modify-header", {"HEADERS_MAP": "{}' ; id ; '"}, "HEADERS_MAP must be text of"),
        ("node-restart", {"SSH_USER": "root x@evil"}, "SSH_USER must be a user name"),
        ("node-restart", {"REBOOT_COMMAND": "halt"}, "REBOOT_COMMAND cannot be set through aftershock"),
        ("pod-network-loss", {"LIB_IMAGE": "evil/image"}, "the image of Litmus's privileged helper pod"),
        ("pod-network-rate-limit", {"NETWORK_BANDWIDTH": "1mbit;id"}, "a tc rate or size"),
        ("pod-dns-spoof", {"SPOOF_MAP": '{"a.com":"b.com"}\''}, "SPOOF_MAP must be text of"),
    ],
)
def test_the_model_refuses_unsafe_values_in_words_a_person_understands(
    experiment: str, env: dict[str, str], words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Fault.model_validate(_fault(experiment, **env))
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("experiment", "env"),
    [
        ("pod-http-latency", {"LATENCY": "500", "TARGET_SERVICE_PORT": "8080", "TOXICITY": "50"}),
        ("pod-http-status-code", {"STATUS_CODE": "500,503", "RESPONSE_BODY": '{"error": "chaos"}'}),
        ("pod-http-modify-header", {"HEADERS_MAP": '{"X-Chaos":"on"}', "HEADER_MODE": "request"}),
        ("pod-http-modify-body", {"RESPONSE_BODY": "down for chaos", "CONTENT_TYPE": "text/plain"}),
        ("pod-http-reset-peer", {"RESET_TIMEOUT": "100"}),
        ("pod-io-stress", {"FILESYSTEM_UTILIZATION_PERCENTAGE": "20", "VOLUME_MOUNT_PATH": "/data"}),
        ("pod-network-rate-limit", {"NETWORK_BANDWIDTH": "1mbit", "BURST": "32kb", "LIMIT": "2mb"}),
        ("pod-dns-spoof", {"SPOOF_MAP": '{"db.example.com":"other.example.com"}'}),
        ("pod-dns-error", {"TARGET_HOSTNAMES": '["db","cache"]', "MATCH_SCHEME": "substring"}),
        ("pod-cpu-hog-exec", {"CPU_CORES": "2"}),
        ("pod-memory-hog-exec", {"MEMORY_CONSUMPTION": "256"}),
        ("disk-fill", {"FILL_PERCENTAGE": "80", "DATA_BLOCK_SIZE": "256"}),
        ("node-io-stress", {"FILESYSTEM_UTILIZATION_BYTES": "2", "VM_WORKERS": "1"}),
        ("node-restart", {"SSH_USER": "ubuntu"}),
        ("kubelet-service-kill", {"RAMP_TIME": "10"}),
        ("container-kill", {"SIGNAL": "SIGTERM", "SOCKET_PATH": "/run/containerd/containerd.sock"}),
    ],
)
def test_the_new_hub_faults_take_their_typed_parameters(experiment: str, env: dict[str, str]) -> None:
    fault = Fault.model_validate(_fault(experiment, **env))
    assert fault.litmus is not None and dict(fault.litmus.env) == env


def test_node_experiments_of_the_hub_are_node_faults() -> None:
    for name in ("node-restart", "kubelet-service-kill", "docker-service-kill", "node-io-stress"):
        assert Fault.model_validate(_fault(name)).policy_kind == "litmusNode"


# --- probes and the policy ------------------------------------------------------------------


def _policy(name: str, *types: str) -> tuple[str, ChaosPolicySpec]:
    return name, ChaosPolicySpec.model_validate({"litmus": {"allowedProbeTypes": list(types)}})


def test_a_policy_allows_http_and_prom_probes_by_default() -> None:
    assert [str(t) for t in ChaosPolicySpec().litmus.allowed_probe_types] == ["httpProbe", "promProbe"]
    assert litmus_params.allowed_probe_types([]) == {"httpProbe", "promProbe"}
    assert litmus_params.allowed_probe_types([("default", ChaosPolicySpec())]) == {"httpProbe", "promProbe"}


def test_the_strictest_policy_decides_the_probe_types() -> None:
    policies = [
        _policy("wide", "httpProbe", "cmdProbe", "k8sProbe"),
        _policy("narrow", "httpProbe", "k8sProbe"),
    ]
    assert litmus_params.allowed_probe_types(policies) == {"httpProbe", "k8sProbe"}
    problem = litmus_params.probe_policy_problem(policies, [{"name": "sh", "type": "cmdProbe"}])
    assert problem is not None
    assert "litmus.probes[0] (sh) is a cmdProbe" in problem
    assert "ChaosPolicy narrow does not list it in litmus.allowedProbeTypes" in problem
    assert "with the chaos ServiceAccount's token" in problem
    assert litmus_params.probe_policy_problem(policies, [{"name": "k", "type": "k8sProbe"}]) is None


def test_without_a_policy_the_default_probe_types_hold_and_unknown_types_are_refused() -> None:
    problem = litmus_params.probe_policy_problem(
        [], [{"type": "httpProbe"}, {"name": "k", "type": "k8sProbe"}]
    )
    assert problem is not None and "litmus.probes[1] (k) is a k8sProbe" in problem
    assert "without a ChaosPolicy only the defaults" in problem
    unknown = litmus_params.probe_policy_problem([], [{"name": "x", "type": "sloProbe"}])
    assert unknown is not None and "must be one of httpProbe, promProbe, cmdProbe, k8sProbe" in unknown


def _k8s(operation: str, **inputs: str) -> dict[str, Any]:
    return {
        "name": "p",
        "type": "k8sProbe",
        "k8sProbe/inputs": {"version": "v1", "resource": "pods", "operation": operation, **inputs},
    }


def test_what_a_k8s_probe_does_is_the_verbs_of_its_operation_on_its_resource() -> None:
    accesses = litmus_params.probe_accesses
    describe = lambda probe: [a.describe() for a in accesses(probe, "shop")]  # noqa: E731
    assert describe(_k8s("create", namespace="shop")) == ["create pods in namespace shop"]
    assert describe(_k8s("delete", namespace="shop", labelSelector="app=x")) == [
        "delete pods in namespace shop",
        "list pods in namespace shop",
    ]
    assert describe(_k8s("delete", namespace="shop", resourceNames="a,b")) == [
        "delete pods in namespace shop"
    ]
    assert describe(_k8s("present", namespace="other", resourceNames="a")) == ["get pods in namespace other"]
    assert describe(_k8s("absent", group="apps", resource="deployments")) == [
        "list deployments.apps cluster-wide"
    ]
    assert describe({"type": "cmdProbe"}) == ["create pods in namespace shop"]
    assert describe({"type": "httpProbe"}) == []


def test_a_k8s_probe_that_does_not_say_what_it_touches_is_refused() -> None:
    assert litmus_params.k8s_probe_problem(0, {"name": "p", "type": "k8sProbe"}) is not None
    assert "operation" in (litmus_params.k8s_probe_problem(0, _k8s("patch")) or "")
    assert litmus_params.k8s_probe_problem(0, _k8s("create")) is None


# --- admission: what is asked of the API server ----------------------------------------------


class Reviewer:
    """Answers SubjectAccessReviews from a set of (verb, resource, namespace, name) it allows."""

    def __init__(self, allowed: set[tuple[str, str, str, str | None]]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, str, str, str | None]] = []

    def can_i(
        self, user: str, groups: list[str], *, namespace: str, verb: str, resource: str, **kw: Any
    ) -> bool:
        request = (verb, resource, namespace, kw.get("name"))
        self.asked.append(request)
        return request in self.allowed


ALICE = {"username": "alice", "groups": ["tenants"]}
ACT_AS_LITMUS = ("impersonate", "serviceaccounts", "shop", "litmus")


def _litmus(probes: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
    body = {"experiment": "pod-delete", "chaosServiceAccount": "litmus", "probes": probes or [], **extra}
    fault = Fault.model_validate({"duration": "30s", "litmus": body})
    return fault.litmus


def _check(
    reviewer: Reviewer, litmus: Any, policies: list[tuple[str, ChaosPolicySpec]] | None = None
) -> None:
    check_litmus(
        reviewer,  # type: ignore[arg-type]
        litmus,
        policies=policies
        if policies is not None
        else [_policy("p", "httpProbe", "promProbe", "k8sProbe", "cmdProbe")],
        user=ALICE,
        target_namespace="shop",
    )


def test_the_author_must_be_allowed_to_impersonate_the_named_chaos_service_account() -> None:
    reviewer = Reviewer(set())
    with pytest.raises(Refused) as refused:
        _check(reviewer, _litmus())
    assert reviewer.asked == [ACT_AS_LITMUS]
    assert "alice may not impersonate serviceaccount litmus in namespace shop" in str(refused.value)
    _check(Reviewer({ACT_AS_LITMUS}), _litmus())


def test_a_provisioned_account_is_not_impersonated_its_grants_are_reviewed_elsewhere() -> None:
    body = {"experiment": "pod-delete", "provisionServiceAccount": True}
    fault = Fault.model_validate({"duration": "30s", "litmus": body})
    reviewer = Reviewer(set())
    _check(reviewer, fault.litmus)
    assert reviewer.asked == []


def test_a_k8s_probe_needs_its_authors_rights_on_what_it_names() -> None:
    probe = _k8s("delete", namespace="shop", labelSelector="app=x")
    reviewer = Reviewer({ACT_AS_LITMUS, ("delete", "pods", "shop", None)})
    with pytest.raises(Refused) as refused:
        _check(reviewer, _litmus([probe]))
    assert "alice may not list pods in namespace shop, which litmus.probes[0] (p) (k8sProbe) would do" in str(
        refused.value
    )
    _check(
        Reviewer({ACT_AS_LITMUS, ("delete", "pods", "shop", None), ("list", "pods", "shop", None)}),
        _litmus([probe]),
    )


def test_probe_types_are_checked_before_any_review() -> None:
    reviewer = Reviewer({ACT_AS_LITMUS})
    with pytest.raises(Refused, match="is a cmdProbe"):
        _check(reviewer, _litmus([{"name": "sh", "type": "cmdProbe"}]), [("default", ChaosPolicySpec())])
    assert reviewer.asked == []
