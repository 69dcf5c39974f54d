"""The steady-state hypothesis, the gate and endpoints.allow: well-formed or refused with a message."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from aftershock.api.experiment import ChaosExperiment, ChaosExperimentSpec
from aftershock.api.policy import ChaosPolicySpec
from aftershock.api.run import ChaosRunSpec
from aftershock.core.run_admission import less_safe
from aftershock.probes.prometheus import values_of, within
from aftershock.probes.workload import ready_of

BASE: dict[str, Any] = {
    "target": {"kind": "Deployment", "selector": {"matchLabels": {"app": "shop"}}, "mode": "one"},
    "fault": {"podDelete": {}},
}
HTTP = {"name": "checkout", "http": {"url": "http://checkout.shop.svc:8080/healthz"}}


def spec(**extra: Any) -> ChaosExperimentSpec:
    return ChaosExperimentSpec.model_validate({**BASE, **extra})


def refused(words: str, **extra: Any) -> None:
    with pytest.raises(ValidationError, match=words):
        spec(**extra)


def test_a_full_hypothesis_parses_with_defaults() -> None:
    s = spec(
        steadyState={
            "probes": [
                {**HTTP, "abortAfter": 3},
                {
                    "name": "errors",
                    "prometheus": {"url": "http://prom.monitoring.svc:9090", "query": "x", "below": 0.5},
                },
                {"name": "replicas", "kubernetes": {"kind": "Deployment", "name": "shop", "readyAtLeast": 2}},
            ]
        },
        gate={"prometheus": {"url": "http://prom.monitoring.svc:9090", "query": "burn", "below": 1}},
    )
    assert s.steady_state is not None and s.steady_state.interval == "2s"
    http = s.steady_state.probes[0].http
    assert http is not None and http.expect_status == [200] and http.timeout == "2s"
    assert [p.type for p in s.steady_state.probes] == ["http", "prometheus", "kubernetes"]
    assert s.steady_state.urls() == [
        "http://checkout.shop.svc:8080/healthz",
        "http://prom.monitoring.svc:9090",
    ]
    run = ChaosRunSpec.from_experiment("kill", s, dt.datetime.now(dt.UTC))
    assert run.steady_state == s.steady_state and run.gate == s.gate


@pytest.mark.parametrize(
    ("probe", "words"),
    [
        ({"name": "p"}, "exactly one of http, prometheus or kubernetes"),
        ({**HTTP, "kubernetes": {"kind": "Deployment", "name": "x", "available": True}}, "exactly one"),
        ({"name": "p", "http": {"url": "ftp://x"}}, "http:// or https:// URL"),
        ({"name": "p", "http": {"url": "http://user:pw@x.shop.svc/"}}, "without user:password@"),
        ({"name": "p", "http": {"url": "http://x.shop.svc/", "timeout": "2m"}}, "from 100ms to 60s"),
        (
            {"name": "p", "http": {"url": "http://x.shop.svc/", "expectStatus": [700]}},
            "less than or equal to 599",
        ),
        ({"name": "p", "prometheus": {"url": "http://p:9090", "query": "up"}}, "needs a bound"),
        (
            {"name": "p", "prometheus": {"url": "http://p:9090", "query": "up", "below": 1, "above": 2}},
            "above must be smaller",
        ),
        ({"name": "p", "kubernetes": {"kind": "Deployment", "name": "x"}}, "needs a condition"),
        ({**HTTP, "abortAfter": 0}, "greater than or equal to 1"),
        ({**HTTP, "name": "Not_A_Label"}, "pattern"),
    ],
)
def test_malformed_probes_are_refused_with_a_message(probe: dict[str, Any], words: str) -> None:
    refused(words, steadyState={"probes": [probe]})


def test_the_hypothesis_needs_distinct_names_and_a_sane_interval() -> None:
    refused("distinct names", steadyState={"probes": [HTTP, HTTP]})
    refused("from 1s to 5m", steadyState={"interval": "100ms", "probes": [HTTP]})
    refused("at least 1 item", steadyState={"probes": []})


def test_a_hand_made_run_may_not_drop_or_change_the_hypothesis() -> None:
    exp = ChaosExperiment.model_validate(
        {
            "metadata": {"name": "kill", "namespace": "shop"},
            "spec": {**BASE, "steadyState": {"probes": [HTTP]}},
        }
    )
    full = ChaosRunSpec.from_experiment("kill", exp.spec, dt.datetime.now(dt.UTC))
    assert less_safe(full, exp) == []
    dropped = full.model_copy(update={"steady_state": None})
    assert any("steady-state hypothesis differs" in f for f in less_safe(dropped, exp))
    only_name = ChaosRunSpec(experiment="kill")
    assert less_safe(only_name, exp) == []  # to be filled in from the experiment


@pytest.mark.parametrize(
    ("entry", "ok"),
    [
        ("*.monitoring.svc", True),
        ("prometheus.monitoring.svc:9090", True),
        ("10.0.0.0/8", True),
        ("127.0.0.1", True),
        ("[::1]:8080", True),
        ("0.0.0.0/0", False),
        ("http://x.svc", False),
        ("a b", False),
    ],
)
def test_endpoints_allow_entries(entry: str, ok: bool) -> None:
    if ok:
        assert ChaosPolicySpec.model_validate({"endpoints": {"allow": [entry]}}).endpoints.allow == [entry]
    else:
        with pytest.raises(ValidationError, match=r"endpoints\.allow entry"):
            ChaosPolicySpec.model_validate({"endpoints": {"allow": [entry]}})


def test_prometheus_answers_and_bounds() -> None:
    vector = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.25"]}]},
    }
    assert values_of(vector) == [0.25]
    assert values_of({"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}) == [3.0]
    assert values_of({"status": "success", "data": {"resultType": "vector", "result": []}}) == []
    assert "query failed: bad_data" in str(values_of({"status": "error", "error": "bad_data"}))
    q = spec(gate={"prometheus": {"url": "http://p:9090", "query": "x", "below": 1, "above": 0}}).gate
    assert q is not None
    assert within(q.prometheus, 0.5) and not within(q.prometheus, 1.0) and not within(q.prometheus, 0.0)
    assert not within(q.prometheus, float("nan"))
    assert q.prometheus.bounds_text() == "between 0 and 1"


def test_workload_readiness_as_controllers_report_it() -> None:
    deployment = {"status": {"readyReplicas": 2, "conditions": [{"type": "Available", "status": "True"}]}}
    assert ready_of("Deployment", deployment) == (2, True)
    assert ready_of("Deployment", {"status": {"readyReplicas": 0}}) == (0, False)
    assert ready_of("StatefulSet", {"status": {"readyReplicas": 1}}) == (1, True)
    assert ready_of("DaemonSet", {"status": {"numberReady": 3, "numberUnavailable": 1}}) == (3, False)
