"""The run-time policy gate decides Litmus probe types on the policies of the moment: a policy
that stops allowing a probe type after the experiment was admitted skips its next run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aftershock.engines.policy_gate import check_before_injecting, parse_policies

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
OPT_IN = {"aftershock.dev/chaos": "enabled"}
K8S_PROBE = {"name": "evict-peers", "type": "k8sProbe", "mode": "Edge"}
HTTP_PROBE = {"name": "health", "type": "httpProbe", "mode": "Continuous"}


def _policy(**litmus: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "spec": {
            "namespaces": {"selector": {"matchLabels": OPT_IN}},
            "allowedFaults": ["litmus"],
            **({"litmus": litmus} if litmus else {}),
        },
    }


def _gate(policy: dict[str, Any], probes: list[dict[str, Any]]) -> tuple[bool, str, str]:
    decision = check_before_injecting(
        policies=parse_policies([policy]),
        target_namespace_labels=OPT_IN,
        active_runs=[],
        run_name="r",
        run_namespace="shop",
        target_namespace="shop",
        fault_kind="litmus",
        operator_namespace=None,
        now=NOW,
        litmus_probes=probes,
    )
    return decision.allowed, decision.reason, decision.message


def test_probe_types_the_policy_allows_now_pass() -> None:
    assert _gate(_policy(), [HTTP_PROBE])[0]  # httpProbe is a default
    assert _gate(_policy(allowedProbeTypes=["httpProbe", "k8sProbe"]), [HTTP_PROBE, K8S_PROBE])[0]
    assert _gate(_policy(), [])[0]  # no probes: nothing to decide


def test_a_probe_type_the_policy_no_longer_lists_stops_the_run() -> None:
    allowed, reason, message = _gate(_policy(allowedProbeTypes=["httpProbe"]), [HTTP_PROBE, K8S_PROBE])
    assert not allowed and reason == "ProbeTypeNotAllowed"
    assert "litmus.probes[1] (evict-peers) is a k8sProbe" in message and "allowedProbeTypes" in message
