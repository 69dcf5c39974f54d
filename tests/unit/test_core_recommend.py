"""core/recommend.py: the recovery-design rules, their fixed ids, the evidence and manifest change
each carries, and the facts read from Kubernetes objects."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
import yaml

from aftershock.api.common import Severity
from aftershock.core import analysis, node_faults
from aftershock.core.recommend import (
    HOSTNAME,
    RULES,
    ZONE,
    ContainerFacts,
    Evidence,
    FindingFacts,
    PdbFacts,
    Recommendation,
    WorkloadFacts,
    blocks_eviction,
    facts_from_objects,
    recommend,
)
from aftershock.core.severity import RecoveryObservation, assess

LABELS = {"app.kubernetes.io/name": "web", "tier": "frontend"}


def container(name: str = "web", **changes: Any) -> ContainerFacts:
    base = ContainerFacts(
        name=name,
        has_readiness_probe=True,
        has_startup_probe=True,
        has_resource_requests=True,
        image=f"registry.example/{name}:1.4",
        image_pull_policy="IfNotPresent",
        port=8080,
    )
    return dataclasses.replace(base, **changes)


def well_built(**changes: Any) -> WorkloadFacts:
    """3 replicas, a PDB allowing one eviction, probes, spread over 3 nodes in 3 zones."""
    base = WorkloadFacts(
        kind="Deployment",
        namespace="shop",
        name="web",
        replicas=3,
        pod_labels={**LABELS, "version": "1.4"},
        match_labels=LABELS,
        containers=[container()],
        spread_keys=frozenset({HOSTNAME, ZONE}),
        nodes={"node-a": 1, "node-b": 1, "node-c": 1},
        zones={"zone-1": 1, "zone-2": 1, "zone-3": 1},
        cluster_nodes=3,
        cluster_zones=3,
        pdbs=[PdbFacts(name="web", max_unavailable="1", disruptions_allowed=1, expected_pods=3)],
    )
    return dataclasses.replace(base, **changes)


FAST = Evidence(recovery_p95=2.5, objective=5.0, runs=12)
T0 = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)


def ids(recs: list[Recommendation]) -> list[str]:
    return [r.id for r in recs]


def by_id(recs: list[Recommendation], rule_id: str) -> Recommendation:
    found = [r for r in recs if r.id == rule_id]
    assert len(found) == 1, ids(recs)
    return found[0]


def docs(change: str) -> list[dict[str, Any]]:
    loaded = [d for d in yaml.safe_load_all(change) if d is not None]
    assert loaded, change
    assert all(isinstance(d, dict) for d in loaded), change
    return loaded


# the real findings aftershock produces, so a renamed title breaks these tests, not production
def retry_storm_finding(run: str = "web-20260504-1000") -> FindingFacts:
    samples = [(T0, 2.0), (T0 + dt.timedelta(seconds=15), 40.0)]
    _ratio, finding = analysis.retry_storm(analysis.Series(baseline=2.0, samples=samples), 3)
    assert finding is not None
    return FindingFacts.of(finding, run)


def latency_finding(run: str = "web-20260504-1000") -> FindingFacts:
    finding = analysis.latency(analysis.Series(baseline=0.1, samples=[(T0, 30.0)]), "2s")
    assert finding is not None
    return FindingFacts.of(finding, run)


def backpressure_finding(run: str = "web-20260504-1000") -> FindingFacts:
    finding = analysis.backpressure(analysis.Series(baseline=3, samples=[(T0, 900.0)]), 100)
    assert finding is not None
    return FindingFacts.of(finding, run)


def no_spread_finding(run: str = "web-20260504-1000") -> FindingFacts:
    (finding,) = node_faults.spread_findings({"node-a": 3}, "Deployment shop/web", 3, {"node-a"})
    return FindingFacts.of(finding, run)


def no_room_finding(run: str = "web-20260504-1000") -> FindingFacts:
    (finding,) = node_faults.no_room_findings(
        {"web-7d9f-abcde": "0/3 nodes are available: 3 Insufficient cpu."}, "Deployment shop/web"
    )
    return FindingFacts.of(finding, run)


def not_recovered_finding(run: str = "web-20260504-1000") -> FindingFacts:
    observation = RecoveryObservation(
        recovered=False,
        recovery_seconds=None,
        objective_seconds=5,
        timeout_seconds=60,
        not_recovered_reason="1/3 pods Ready",
    )
    (finding,) = assess(observation).findings
    return FindingFacts.of(finding, run)


# --- the table ----------------------------------------------------------------------------------


def test_rule_ids_are_fixed_forever() -> None:
    assert dict(RULES) == {
        "AS-R001": "single-replica",
        "AS-R002": "no-pdb",
        "AS-R003": "pdb-blocks-eviction",
        "AS-R004": "no-readiness-probe",
        "AS-R005": "no-spread-node",
        "AS-R006": "no-spread-zone",
        "AS-R007": "slow-recovery",
        "AS-R008": "retry-storm",
        "AS-R009": "missing-timeouts",
        "AS-R010": "no-backpressure",
        "AS-R011": "no-spread",
        "AS-R012": "no-room",
    }
    assert len(set(RULES.values())) == len(RULES)


def test_the_module_docstring_documents_every_rule() -> None:
    import aftershock.core.recommend as module

    doc = module.__doc__ or ""
    for rule_id, slug in RULES.items():
        assert f"| {rule_id} | {slug}" in doc, rule_id


def test_a_well_built_workload_gets_no_recommendation() -> None:
    assert recommend(well_built(), FAST) == []
    assert recommend(well_built(), Evidence()) == []  # never run: nothing to say about recovery
    # zones unknown (nodes without the zone label) is not a finding either
    assert recommend(well_built(zones={}, cluster_zones=0), FAST) == []


# --- each rule on its weak case -------------------------------------------------------------------

WEAK: dict[str, tuple[WorkloadFacts, Evidence, Severity]] = {
    "AS-R001": (well_built(replicas=1, nodes={"node-a": 1}, zones={"zone-1": 1}), FAST, Severity.HIGH),
    "AS-R002": (well_built(pdbs=[]), FAST, Severity.MEDIUM),
    "AS-R003": (well_built(pdbs=[PdbFacts(name="web-strict", max_unavailable="0")]), FAST, Severity.MEDIUM),
    "AS-R004": (
        well_built(containers=[container(), container("sidecar", has_readiness_probe=False)]),
        FAST,
        Severity.LOW,
    ),
    "AS-R005": (
        well_built(nodes={"node-a": 3}, zones={}, cluster_zones=0, spread_keys=frozenset()),
        FAST,
        Severity.HIGH,
    ),
    "AS-R006": (
        well_built(zones={"zone-1": 3}, spread_keys=frozenset({HOSTNAME})),
        FAST,
        Severity.MEDIUM,
    ),
    "AS-R007": (well_built(), Evidence(recovery_p95=13.0, objective=5.0, runs=8), Severity.MEDIUM),
    "AS-R008": (well_built(), Evidence(runs=5, findings=[retry_storm_finding()]), Severity.HIGH),
    "AS-R009": (well_built(), Evidence(runs=5, findings=[latency_finding()]), Severity.HIGH),
    "AS-R010": (well_built(), Evidence(runs=5, findings=[backpressure_finding()]), Severity.HIGH),
    "AS-R011": (well_built(), Evidence(runs=5, findings=[no_spread_finding()]), Severity.HIGH),
    "AS-R012": (well_built(), Evidence(runs=5, findings=[no_room_finding()]), Severity.HIGH),
}


def test_every_rule_has_a_weak_case() -> None:
    assert WEAK.keys() == RULES.keys()


@pytest.mark.parametrize("rule_id", sorted(WEAK))
def test_rule_fires_on_its_weak_case(rule_id: str) -> None:
    facts, evidence, severity = WEAK[rule_id]
    recs = recommend(facts, evidence)
    rec = by_id(recs, rule_id)
    assert rec.rule == RULES[rule_id]
    assert rec.severity is severity
    assert rec.target == "Deployment shop/web"
    assert rec.title and rec.evidence
    assert docs(rec.change)
    assert rec.change.startswith("# "), "a change says in a comment what it does"
    assert ids(recs) == sorted(ids(recs))


@pytest.mark.parametrize("rule_id", sorted(WEAK))
def test_weak_cases_fire_only_their_own_rule(rule_id: str) -> None:
    facts, evidence, _severity = WEAK[rule_id]
    assert ids(recommend(facts, evidence)) == [rule_id]


def test_to_json_is_camel_case_and_complete() -> None:
    facts, evidence, _ = WEAK["AS-R002"]
    (rec,) = recommend(facts, evidence)
    assert rec.to_json() == {
        "id": "AS-R002",
        "rule": "no-pdb",
        "severity": "medium",
        "title": rec.title,
        "target": "Deployment shop/web",
        "evidence": rec.evidence,
        "change": rec.change,
    }


def test_everything_wrong_at_once_is_ordered_by_id_and_deterministic() -> None:
    facts = well_built(
        replicas=1,
        containers=[
            container(has_readiness_probe=False, has_startup_probe=False, has_resource_requests=False)
        ],
        spread_keys=frozenset(),
        nodes={"node-a": 1},
        zones={"zone-1": 1},
        pdbs=[PdbFacts(name="web", min_available="1")],
    )
    evidence = Evidence(
        recovery_p95=40.0,
        objective=5.0,
        runs=6,
        findings=[
            no_room_finding("r6"),
            retry_storm_finding("r1"),
            latency_finding("r2"),
            backpressure_finding("r3"),
            no_spread_finding("r4"),
        ],
    )
    first = recommend(facts, evidence)
    assert first == recommend(facts, evidence)
    assert ids(first) == [
        "AS-R001",
        "AS-R003",
        "AS-R004",
        "AS-R007",
        "AS-R008",
        "AS-R009",
        "AS-R010",
        "AS-R011",
        "AS-R012",
    ]
    for rec in first:
        docs(rec.change)


# --- the rules in detail --------------------------------------------------------------------------


def test_single_replica_change_sets_two_replicas_and_daemonsets_are_exempt() -> None:
    facts, evidence, _ = WEAK["AS-R001"]
    rec = by_id(recommend(facts, evidence), "AS-R001")
    (patch,) = docs(rec.change)
    assert patch["kind"] == "Deployment"
    assert patch["metadata"] == {"name": "web", "namespace": "shop"}
    assert patch["spec"] == {"replicas": 2}
    assert "1 replica" in rec.evidence
    assert by_id(recommend(well_built(replicas=0, nodes={}, zones={}), FAST), "AS-R001")
    daemon = well_built(kind="DaemonSet", replicas=1, pdbs=[], nodes={"node-a": 1}, zones={"zone-1": 1})
    assert recommend(daemon, FAST) == []
    # a DaemonSet needs no PDB nor spread either (one pod per node is its design)
    daemon = well_built(kind="DaemonSet", pdbs=[], spread_keys=frozenset(), nodes={"node-a": 3})
    assert recommend(daemon, FAST) == []


def test_no_pdb_change_is_a_pdb_with_the_workload_selector() -> None:
    facts, evidence, _ = WEAK["AS-R002"]
    rec = by_id(recommend(facts, evidence), "AS-R002")
    (pdb,) = docs(rec.change)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["kind"] == "PodDisruptionBudget"
    assert pdb["metadata"] == {"name": "web", "namespace": "shop"}
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == {"matchLabels": LABELS}
    assert "app.kubernetes.io/name=web" in rec.evidence
    # without a selector, the template's labels are used
    rec = by_id(recommend(well_built(pdbs=[], match_labels={}), FAST), "AS-R002")
    assert docs(rec.change)[0]["spec"]["selector"] == {"matchLabels": {**LABELS, "version": "1.4"}}


@pytest.mark.parametrize(
    ("pdb", "replicas", "blocks"),
    [
        (PdbFacts(name="p", max_unavailable="0"), 3, True),
        (PdbFacts(name="p", max_unavailable="0%"), 3, True),
        (PdbFacts(name="p", max_unavailable="1"), 3, False),
        (PdbFacts(name="p", max_unavailable="10%"), 3, False),  # rounded up: 1
        (PdbFacts(name="p", min_available="3"), 3, True),
        (PdbFacts(name="p", min_available="5"), 3, True),
        (PdbFacts(name="p", min_available="100%"), 3, True),
        (PdbFacts(name="p", min_available="90%"), 3, True),  # ceil(2.7) = 3
        (PdbFacts(name="p", min_available="2"), 3, False),
        (PdbFacts(name="p", min_available="60%"), 3, False),  # ceil(1.8) = 2
        (PdbFacts(name="p", min_available="1"), 1, True),
        (PdbFacts(name="p", min_available="3", expected_pods=6), 3, False),  # it covers more pods
        (PdbFacts(name="p"), 3, False),
        (PdbFacts(name="p", min_available="lots"), 3, False),
    ],
)
def test_blocks_eviction(pdb: PdbFacts, replicas: int, blocks: bool) -> None:
    assert blocks_eviction(pdb, replicas) is blocks


def test_pdb_blocks_eviction_names_every_blocking_budget_and_replaces_them() -> None:
    facts = well_built(
        pdbs=[
            PdbFacts(name="ok", max_unavailable="1", disruptions_allowed=1),
            PdbFacts(name="strict", min_available="100%", expected_pods=3),
            PdbFacts(name="zero", max_unavailable="0%"),
        ]
    )
    rec = by_id(recommend(facts, FAST), "AS-R003")
    assert "strict (minAvailable 100% of 3 pods, disruptionsAllowed 0)" in rec.evidence
    assert "zero (maxUnavailable 0%" in rec.evidence
    assert "ok" not in rec.evidence.split(":", 1)[1]
    changed = docs(rec.change)
    assert [d["metadata"]["name"] for d in changed] == ["strict", "zero"]
    for pdb in changed:
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"] == LABELS


def test_no_readiness_probe_names_the_containers_and_adds_stubs() -> None:
    facts = well_built(
        containers=[
            container("web", has_readiness_probe=False, port=8443),
            container("proxy"),
            container("log-shipper", has_readiness_probe=False, port=None),
        ]
    )
    rec = by_id(recommend(facts, FAST), "AS-R004")
    assert "web, log-shipper" in rec.evidence
    assert "proxy" not in rec.evidence
    (patch,) = docs(rec.change)
    probes = {c["name"]: c["readinessProbe"] for c in patch["spec"]["template"]["spec"]["containers"]}
    assert probes.keys() == {"web", "log-shipper"}
    assert probes["web"]["httpGet"]["port"] == 8443
    assert probes["log-shipper"]["httpGet"]["port"] == 8080


def spread_constraint(rec: Recommendation) -> dict[str, Any]:
    (patch,) = docs(rec.change)
    (constraint,) = patch["spec"]["template"]["spec"]["topologySpreadConstraints"]
    result: dict[str, Any] = constraint
    return result


def test_all_on_one_node_is_high_and_the_change_spreads_by_hostname() -> None:
    facts, evidence, _ = WEAK["AS-R005"]
    rec = by_id(recommend(facts, evidence), "AS-R005")
    assert rec.title == "All replicas on one node"
    assert "all 3 Ready pods" in rec.evidence and "node-a" in rec.evidence
    assert "3 nodes" in rec.evidence
    constraint = spread_constraint(rec)
    assert constraint["topologyKey"] == HOSTNAME
    assert constraint["whenUnsatisfiable"] == "DoNotSchedule"
    assert constraint["labelSelector"] == {"matchLabels": LABELS}
    assert constraint["matchLabelKeys"] == ["pod-template-hash"]
    # even with a constraint (ScheduleAnyway, say), all on one node is still high
    constrained = dataclasses.replace(facts, spread_keys=frozenset({HOSTNAME}))
    rec = by_id(recommend(constrained, FAST), "AS-R005")
    assert rec.severity is Severity.HIGH and "despite a constraint" in rec.evidence
    # a single-node cluster: still said, with what else to do
    alone = dataclasses.replace(facts, cluster_nodes=1)
    assert "add nodes" in by_id(recommend(alone, FAST), "AS-R005").evidence


def test_stacked_replicas_without_a_constraint_are_medium() -> None:
    facts = well_built(
        replicas=4,
        spread_keys=frozenset({ZONE}),
        nodes={"node-a": 2, "node-b": 2},
        cluster_nodes=5,
    )
    rec = by_id(recommend(facts, FAST), "AS-R005")
    assert rec.severity is Severity.MEDIUM
    assert rec.title == "Replicas not spread over nodes"
    assert "node-a: 2, node-b: 2" in rec.evidence and "has 5" in rec.evidence
    # pod anti-affinity on the hostname counts as a constraint
    assert recommend(dataclasses.replace(facts, anti_affinity_keys=frozenset({HOSTNAME})), FAST) == []
    # every node in use already: nowhere else to go
    assert recommend(dataclasses.replace(facts, cluster_nodes=2), FAST) == []
    # one pod per node, no constraint: fine as it stands
    assert recommend(well_built(spread_keys=frozenset()), FAST) == []


def test_one_ready_pod_on_a_node_is_not_all_on_one_node() -> None:
    # 3 replicas, only one Ready: placement says nothing yet (readiness is another matter)
    assert "AS-R005" not in ids(recommend(well_built(nodes={"node-a": 1}, zones={"zone-1": 1}), FAST))


def test_all_in_one_zone_change_spreads_by_zone() -> None:
    facts, evidence, _ = WEAK["AS-R006"]
    rec = by_id(recommend(facts, evidence), "AS-R006")
    assert "zone-1" in rec.evidence and "3 zones" in rec.evidence
    constraint = spread_constraint(rec)
    assert constraint["topologyKey"] == ZONE
    assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
    assert constraint["labelSelector"] == {"matchLabels": LABELS}
    # a single-zone cluster: nothing to spread over
    assert recommend(dataclasses.replace(facts, cluster_zones=1), FAST) == []


def test_statefulset_spread_has_no_pod_template_hash() -> None:
    facts = well_built(kind="StatefulSet", nodes={"node-a": 3}, zones={"zone-1": 3}, spread_keys=frozenset())
    rec = by_id(recommend(facts, FAST), "AS-R005")
    assert rec.target == "StatefulSet shop/web"
    assert "matchLabelKeys" not in spread_constraint(rec)
    assert docs(rec.change)[0]["kind"] == "StatefulSet"


@pytest.mark.parametrize(
    ("p95", "objective", "fires"),
    [(13.0, 5.0, True), (5.0, 5.0, False), (4.9, 5.0, False), (None, 5.0, False), (13.0, None, False)],
)
def test_slow_recovery_threshold(p95: float | None, objective: float | None, fires: bool) -> None:
    evidence = Evidence(recovery_p95=p95, objective=objective, runs=3)
    assert ("AS-R007" in ids(recommend(well_built(), evidence))) is fires


def test_slow_recovery_evidence_and_change_per_container() -> None:
    facts = well_built(
        containers=[
            container(
                "web",
                has_startup_probe=False,
                has_resource_requests=False,
                readiness_initial_delay=30,
                image_pull_policy="Always",
            ),
            container("proxy"),
        ]
    )
    rec = by_id(recommend(facts, Evidence(recovery_p95=13.0, objective=5.0, runs=8)), "AS-R007")
    assert rec.severity is Severity.MEDIUM
    for text in (
        "recovery p95 13s (8 runs) over the 5s objective",
        "web has no startupProbe",
        "initialDelaySeconds 30",
        "web has no resource requests",
        "imagePullPolicy Always",
    ):
        assert text in rec.evidence, rec.evidence
    assert "proxy" not in rec.evidence
    assert "registry.example/web:1.4" in rec.change  # the image, named in the comment
    (patch,) = docs(rec.change)
    web, proxy = patch["spec"]["template"]["spec"]["containers"]
    assert web["name"] == "web"
    assert web["startupProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert web["startupProbe"]["periodSeconds"] == 1
    assert web["readinessProbe"] == {"initialDelaySeconds": 0}
    assert web["resources"]["requests"].keys() == {"cpu", "memory"}
    assert web["imagePullPolicy"] == "IfNotPresent"
    assert proxy == {"name": "proxy", "startupProbe": {"periodSeconds": 1}}


def test_not_recovering_within_the_timeout_is_high() -> None:
    evidence = Evidence(runs=4, findings=[not_recovered_finding("web-1"), not_recovered_finding("web-2")])
    rec = by_id(recommend(well_built(), evidence), "AS-R007")
    assert rec.severity is Severity.HIGH
    assert rec.title == "Did not recover within the timeout"
    assert "in 2 of 4 runs (web-1, web-2)" in rec.evidence


def test_finding_rules_quote_the_finding_and_count_the_runs() -> None:
    evidence = Evidence(
        runs=10,
        findings=[retry_storm_finding(f"web-{i}") for i in range(7)] + [latency_finding("web-9")],
    )
    recs = recommend(well_built(), evidence)
    assert ids(recs) == ["AS-R008", "AS-R009"]
    storm = by_id(recs, "AS-R008")
    assert storm.evidence.startswith(
        '"Retry storm" in 7 of 10 runs (web-0, web-1, web-2, web-3, web-4 and 2 more): '
    )
    assert "20.0 times as much" in storm.evidence
    assert by_id(recs, "AS-R009").evidence.startswith('"Missing timeouts" in 1 of 10 runs (web-9): ')


def test_finding_rules_take_the_findings_severity() -> None:
    mild = dataclasses.replace(retry_storm_finding(), severity=Severity.MEDIUM)
    assert by_id(recommend(well_built(), Evidence(findings=[mild])), "AS-R008").severity is Severity.MEDIUM
    rated_none = dataclasses.replace(backpressure_finding(), severity=Severity.NONE)
    assert by_id(recommend(well_built(), Evidence(findings=[rated_none])), "AS-R010").severity is Severity.LOW


def test_other_findings_do_not_trigger_finding_rules() -> None:
    findings = [
        FindingFacts(severity=Severity.MEDIUM, title="Recovery slower than objective", run="r1"),
        FindingFacts(severity=Severity.LOW, title="Transient probe failures", run="r2"),
        FindingFacts(severity=Severity.LOW, title="Capacity lost during the fault", run="r3"),
    ]
    assert recommend(well_built(), Evidence(recovery_p95=3, objective=5, runs=3, findings=findings)) == []


def test_mesh_changes_name_the_service_host() -> None:
    for rule_id in ("AS-R008", "AS-R009", "AS-R010"):
        facts, evidence, _ = WEAK[rule_id]
        rec = by_id(recommend(facts, evidence), rule_id)
        loaded = docs(rec.change)
        assert all(d["apiVersion"] == "networking.istio.io/v1" for d in loaded)
        assert all(d["metadata"]["namespace"] == "shop" for d in loaded)
        assert "web.shop.svc.cluster.local" in rec.change
    storm = by_id(recommend(*WEAK["AS-R008"][:2]), "AS-R008")
    assert "backoff" in storm.change and "jitter" in storm.change and "circuit breaker" in storm.change
    assert [d["kind"] for d in docs(storm.change)] == ["DestinationRule", "VirtualService"]
    timeouts = by_id(recommend(*WEAK["AS-R009"][:2]), "AS-R009")
    assert docs(timeouts.change)[0]["spec"]["http"][0]["timeout"]
    backpressure = by_id(recommend(*WEAK["AS-R010"][:2]), "AS-R010")
    pool = docs(backpressure.change)[0]["spec"]["trafficPolicy"]["connectionPool"]
    assert pool["http"]["http1MaxPendingRequests"] > 0


def test_no_spread_finding_change_spreads_with_the_workload_labels() -> None:
    rec = by_id(recommend(*WEAK["AS-R011"][:2]), "AS-R011")
    assert rec.evidence.startswith('"no spread: every replica of Deployment shop/web was on node-a"')
    assert spread_constraint(rec)["labelSelector"] == {"matchLabels": LABELS}


def test_no_room_change_keeps_headroom() -> None:
    rec = by_id(recommend(*WEAK["AS-R012"][:2]), "AS-R012")
    assert "Insufficient cpu" in rec.evidence
    priority, placeholder = docs(rec.change)
    assert priority["kind"] == "PriorityClass" and priority["value"] < 0
    assert placeholder["spec"]["template"]["spec"]["priorityClassName"] == priority["metadata"]["name"]
    assert "&id" not in rec.change, "no YAML anchors in a change people read"


def test_strings_are_coerced_to_severity() -> None:
    facts = FindingFacts(severity="high", title="Retry storm")  # type: ignore[arg-type]
    assert facts.severity is Severity.HIGH


# --- facts from Kubernetes objects ------------------------------------------------------------------


def deployment(**spec_changes: Any) -> dict[str, Any]:
    template_labels = {**LABELS, "version": "1.4"}
    spec: dict[str, Any] = {
        "replicas": 3,
        "selector": {"matchLabels": dict(LABELS)},
        "template": {
            "metadata": {"labels": template_labels, "annotations": {"a": "b"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "registry.example/web:1.4",
                        "imagePullPolicy": "Always",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "readinessProbe": {
                            "httpGet": {"path": "/ready", "port": "http"},
                            "initialDelaySeconds": 15,
                        },
                        "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "256Mi"}},
                    },
                    {
                        "name": "proxy",
                        "image": "envoyproxy/envoy:v1.31",
                        "startupProbe": {"tcpSocket": {"port": 9901}},
                        "readinessProbe": {"tcpSocket": {"port": 9901}},
                        "resources": {"limits": {"cpu": "1"}},
                    },
                ],
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": ZONE,
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                    },
                    {  # someone else's pods: not a constraint on ours
                        "maxSkew": 1,
                        "topologyKey": "example.com/rack",
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "db"}},
                    },
                    {  # no labelSelector: selects no pod
                        "maxSkew": 1,
                        "topologyKey": "example.com/row",
                        "whenUnsatisfiable": "DoNotSchedule",
                    },
                ],
                "affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100,
                                "podAffinityTerm": {
                                    "topologyKey": HOSTNAME,
                                    "labelSelector": {
                                        "matchExpressions": [
                                            {
                                                "key": "app.kubernetes.io/name",
                                                "operator": "In",
                                                "values": ["web"],
                                            }
                                        ]
                                    },
                                },
                            }
                        ]
                    }
                },
            },
        },
        "strategy": {"type": "RollingUpdate"},
    }
    spec.update(spec_changes)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "d-1", "generation": 4},
        "spec": spec,
        "status": {"replicas": 3, "readyReplicas": 2},
    }


def pod_object(
    name: str,
    node: str | None,
    *,
    ready: bool = True,
    namespace: str = "shop",
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    deleting: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels if labels is not None else {**LABELS, "version": "1.4", "pod-template-hash": "7d9f"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9f", "controller": True}],
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-05-04T10:00:00Z"
    spec: dict[str, Any] = {"containers": [{"name": "web"}]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True" if ready else "False"},
            ],
        },
    }


def pdb_object(
    name: str, spec: dict[str, Any], *, namespace: str = "shop", allowed: int = 0
) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
        "status": {
            "disruptionsAllowed": allowed,
            "expectedPods": 3,
            "currentHealthy": 3,
            "desiredHealthy": 2,
        },
    }


NODES = {
    "cp-1": {"node-role.kubernetes.io/control-plane": "", ZONE: "zone-9", HOSTNAME: "cp-1"},
    "node-a": {ZONE: "zone-1", HOSTNAME: "node-a"},
    "node-b": {ZONE: "zone-1", HOSTNAME: "node-b"},
    "node-c": {ZONE: "zone-2", HOSTNAME: "node-c"},
    "node-d": {HOSTNAME: "node-d"},  # no zone label
}

PODS = [
    pod_object("web-1", "node-a"),
    pod_object("web-2", "node-a"),
    pod_object("web-3", "node-b", ready=False),
    pod_object("web-4", None, ready=False),  # Pending
    pod_object("web-5", "node-c", deleting=True),
    pod_object("web-6", "node-c", phase="Failed"),
    pod_object("web-1", "node-c", namespace="other"),
    pod_object("api-1", "node-c", labels={"app.kubernetes.io/name": "api"}),
]

PDBS = [
    pdb_object(
        "web", {"minAvailable": 2, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}, allowed=1
    ),
    pdb_object("all-pods", {"maxUnavailable": "0%", "selector": {}}),  # empty selector: every pod
    pdb_object("none", {"maxUnavailable": 1}),  # no selector: no pod
    pdb_object("api", {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "api"}}}),
    pdb_object("elsewhere", {"maxUnavailable": 0, "selector": {}}, namespace="other"),
]


def test_facts_from_objects_reads_a_deployment() -> None:
    facts = facts_from_objects(deployment(), PODS, PDBS, NODES)
    assert (facts.kind, facts.namespace, facts.name, facts.replicas) == ("Deployment", "shop", "web", 3)
    assert facts.target == "Deployment shop/web"
    assert facts.pod_labels == {**LABELS, "version": "1.4"}
    assert facts.match_labels == LABELS
    assert facts.selector_labels == LABELS
    web, proxy = facts.containers
    assert web == ContainerFacts(
        name="web",
        has_readiness_probe=True,
        has_startup_probe=False,
        has_resource_requests=True,
        readiness_initial_delay=15,
        image="registry.example/web:1.4",
        image_pull_policy="Always",
        port=8080,
    )
    assert (proxy.has_readiness_probe, proxy.has_startup_probe, proxy.has_resource_requests) == (
        True,
        True,
        False,
    )
    assert proxy.port is None
    assert facts.has_readiness_probe and not facts.has_startup_probe
    assert facts.spread_keys == {ZONE}
    assert facts.anti_affinity_keys == {HOSTNAME}
    assert facts.topology_spread and facts.anti_affinity
    # Ready pods of this workload only: not Pending, terminating, failed, other namespaces or apps
    assert facts.nodes == {"node-a": 2}
    assert facts.zones == {"zone-1": 2}
    assert facts.cluster_nodes == 4  # the control-plane node runs none of its pods
    assert facts.cluster_zones == 2
    assert [p.name for p in facts.pdbs] == ["all-pods", "web"]
    all_pods, web_pdb = facts.pdbs
    assert web_pdb == PdbFacts(name="web", min_available="2", disruptions_allowed=1, expected_pods=3)
    assert all_pods.max_unavailable == "0%" and all_pods.min_available is None


def test_facts_from_objects_feed_the_rules() -> None:
    facts = facts_from_objects(deployment(), PODS, PDBS, NODES)
    recs = recommend(facts, Evidence(recovery_p95=20.0, objective=10.0, runs=5))
    assert ids(recs) == ["AS-R003", "AS-R005", "AS-R006", "AS-R007"]
    assert "all-pods (maxUnavailable 0%" in by_id(recs, "AS-R003").evidence
    spread = by_id(recs, "AS-R005")
    assert spread.severity is Severity.HIGH  # both Ready pods on node-a, despite the soft anti-affinity
    assert spread_constraint(spread)["labelSelector"] == {"matchLabels": LABELS}
    slow = by_id(recs, "AS-R007")
    assert "initialDelaySeconds 15" in slow.evidence and "proxy has no resource requests" in slow.evidence


def test_facts_from_objects_a_well_spread_deployment_has_nothing_to_fix() -> None:
    nodes = {f"node-{i}": {HOSTNAME: f"node-{i}", ZONE: f"zone-{i}"} for i in (1, 2, 3)}
    pods = [pod_object(f"web-{i}", f"node-{i}") for i in (1, 2, 3)]
    pdbs = [pdb_object("web", {"maxUnavailable": 1, "selector": {"matchLabels": LABELS}}, allowed=1)]
    workload = deployment()
    spec = workload["spec"]["template"]["spec"]
    for c in spec["containers"]:
        c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
        c["startupProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
        c["resources"] = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    facts = facts_from_objects(workload, pods, pdbs, nodes)
    assert facts.nodes == {"node-1": 1, "node-2": 1, "node-3": 1}
    assert facts.cluster_zones == 3
    assert recommend(facts, FAST) == []


def test_facts_from_objects_defaults_and_other_kinds() -> None:
    workload = deployment()
    del workload["spec"]["replicas"]  # the API's default
    assert facts_from_objects(workload, [], [], {}).replicas == 1
    daemon = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent"}]},
            },
        },
        "status": {"desiredNumberScheduled": 4},
    }
    facts = facts_from_objects(daemon, [], [], {})
    assert facts.replicas == 4 and facts.is_daemonset
    del daemon["status"]
    agents = [pod_object(f"agent-{i}", f"node-{i}", labels={"app": "agent"}) for i in range(2)]
    facts = facts_from_objects(daemon, agents, [], {})
    assert facts.replicas == 2
    assert ids(recommend(facts, FAST)) == ["AS-R004"]  # the only thing a DaemonSet is told here
