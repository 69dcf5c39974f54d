"""Where probes may connect: the default, policy lists, and the addresses no broad entry unlocks."""

from __future__ import annotations

import ipaddress

import pytest

from aftershock.core.endpoints import EndpointRules, parse_entry

API = [("10.96.0.1", 443), ("127.0.0.1", 6443)]


def rules(*allow_lists: list[str], namespace: str = "shop") -> EndpointRules:
    return EndpointRules.build(namespace, allow_lists or ([],), API)


def test_services_of_the_target_namespace_are_allowed_by_default() -> None:
    r = rules()
    assert r.refusal("http://checkout.shop.svc:8080/healthz") is None
    assert r.refusal("http://checkout.shop.svc.cluster.local/healthz") is None
    refused = r.refusal("http://checkout.payments.svc:8080/")
    assert refused is not None and "not a Service of the target namespace shop" in refused
    assert r.refusal("http://example.com/") is not None
    assert r.refusal("http://10.0.0.7/") is not None


def test_every_policy_must_list_what_is_not_the_target_namespace() -> None:
    one = rules(["*.monitoring.svc"])
    assert one.refusal("http://prometheus.monitoring.svc:9090") is None
    both = rules(["*.monitoring.svc"], [])
    refused = both.refusal("http://prometheus.monitoring.svc:9090")
    assert refused is not None and "policy 2 of 2" in refused
    assert (
        rules(["prometheus.monitoring.svc:9090"]).refusal("http://prometheus.monitoring.svc:9090/x") is None
    )
    assert (
        rules(["prometheus.monitoring.svc:9090"]).refusal("http://prometheus.monitoring.svc:80/") is not None
    )
    assert rules(["10.0.0.0/8"]).refusal("http://10.1.2.3:8080/") is None
    assert rules(["10.0.0.0/8"]).refusal("http://11.1.2.3/") is not None


def test_no_policy_allows_nothing() -> None:
    refused = EndpointRules.build("shop", [], API).refusal("http://checkout.shop.svc/")
    assert refused is not None and "no ChaosPolicy" in refused


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://127.0.0.1:8080/",
        "http://localhost:8080/",
        "http://0.0.0.0/",
    ],
)
def test_metadata_and_loopback_need_an_entry_of_their_own(url: str) -> None:
    assert rules(["0.0.0.0/8", "*.internal"]).refusal(url) is not None


def test_loopback_and_metadata_named_on_their_own_are_allowed() -> None:
    assert rules(["127.0.0.1/32"]).refusal("http://127.0.0.1:8080/") is None
    assert rules(["169.254.169.254"]).refusal("http://169.254.169.254/") is None
    assert rules(["localhost"]).refusal("http://localhost:8080/") is None


def test_the_api_server_needs_its_exact_host_and_port() -> None:
    for url in (
        "https://kubernetes.default.svc/readyz",
        "https://10.96.0.1/readyz",
        "https://127.0.0.1:6443/",
    ):
        refused = rules(["127.0.0.1/32", "10.0.0.0/8", "*.svc"]).refusal(url)
        assert refused is not None and "API server" in refused, url
    # the same loopback address on another port is an ordinary explicitly listed endpoint
    assert rules(["127.0.0.1/32"]).refusal("http://127.0.0.1:8080/") is None
    assert rules(["127.0.0.1:6443"]).refusal("https://127.0.0.1:6443/readyz") is None
    assert rules(["kubernetes.default.svc:443"]).refusal("https://kubernetes.default.svc/readyz") is None


def test_a_name_resolving_to_a_sensitive_address_is_refused_at_connect_time() -> None:
    r = rules(["*.example.com"])
    assert r.refusal("http://evil.example.com/") is None  # allowed as written
    refused = r.address_refusal(
        "http://evil.example.com/", "evil.example.com", ipaddress.ip_address("169.254.169.254"), 80
    )
    assert refused is not None and "link-local" in refused
    refused = r.address_refusal(
        "http://evil.example.com/", "evil.example.com", ipaddress.ip_address("10.96.0.1"), 443
    )
    assert refused is not None and "API server" in refused
    assert (
        r.address_refusal(
            "http://ok.example.com/", "ok.example.com", ipaddress.ip_address("93.184.216.34"), 80
        )
        is None
    )


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("0.0.0.0/0", "wider than /8"),
        ("ex ample.com", "not a host name"),
        ("a.com:99999", "port"),
        ("http://x", "is a URL"),
    ],
)
def test_malformed_entries_are_explained(entry: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_entry(entry)


def test_urls_with_credentials_or_other_schemes_are_refused() -> None:
    assert "credentials" in (rules(["*.svc"]).refusal("http://u:p@checkout.shop.svc/") or "")
    assert rules().refusal("ftp://checkout.shop.svc/") is not None
