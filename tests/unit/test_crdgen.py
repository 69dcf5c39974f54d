"""The generated CRDs: structural, bounded for CEL cost, consistent with the models, and committed."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aftershock.api import ChaosExperiment, ChaosPolicy, ChaosRun, ResourceModel
from aftershock.api.crdgen import (
    DEFAULT_OUT,
    HEADER,
    KINDS,
    SchemaError,
    build_crd,
    check,
    generate,
    main,
    openapi_schema,
    to_structural,
    write,
)

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"$ref", "$defs", "anyOf", "allOf", "oneOf", "not", "title", "const", "propertyNames", "nullable"}


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def version(kind: type[ResourceModel]) -> dict[str, Any]:
    versions: list[dict[str, Any]] = build_crd(kind)["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


def rules(schema: dict[str, Any]) -> list[dict[str, str]]:
    return [rule for _, node in walk(schema) for rule in node.get("x-kubernetes-validations", [])]


def apply_defaults(obj: Any, schema: dict[str, Any]) -> Any:
    """The apiserver's structural defaulting, enough for these schemas."""
    if isinstance(obj, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                obj[name] = apply_defaults(obj[name], sub)
    elif isinstance(obj, list) and "items" in schema:
        return [apply_defaults(item, schema["items"]) for item in obj]
    return obj


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_schema_is_structural(kind: type[ResourceModel]) -> None:
    schema = openapi_schema(kind)
    for path, node in walk(schema):
        assert "type" in node, f"{path or '<root>'} has no type"
        assert not FORBIDDEN & node.keys(), f"{path}: {FORBIDDEN & node.keys()}"
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert node["type"] == "object", path
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert {"apiVersion", "kind", "metadata", "spec", "status"} <= schema["properties"].keys()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_spec_is_bounded_for_cel_cost(kind: type[ResourceModel]) -> None:
    """Unbounded strings, lists and maps make the apiserver's CEL cost estimate reject rules."""
    for path, node in walk(openapi_schema(kind)["properties"]["spec"], ".spec"):
        if node["type"] == "string" and "enum" not in node and node.get("format") != "date-time":
            assert "maxLength" in node, path
        if node["type"] == "array":
            assert "maxItems" in node, path
        if "additionalProperties" in node:
            assert "maxProperties" in node, path


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.KIND)
def test_every_field_is_described(kind: type[ResourceModel]) -> None:
    for path, node in walk(openapi_schema(kind)):
        if path.count(".") and not path.endswith(("[]", "{}")) and path != ".metadata":
            assert node.get("description"), f"{path} has no description for kubectl explain"


def test_crd_metadata() -> None:
    expected = {
        ChaosExperiment: ("chaosexperiments", "chaosexperiment", ["cexp"], "Namespaced"),
        ChaosRun: ("chaosruns", "chaosrun", ["crun"], "Namespaced"),
        ChaosPolicy: ("chaospolicies", "chaospolicy", ["cpol"], "Cluster"),
    }
    assert set(KINDS) == set(expected)
    for kind, (plural, singular, short, scope) in expected.items():
        crd = build_crd(kind)
        assert crd["metadata"]["name"] == f"{plural}.aftershock.dev"
        spec = crd["spec"]
        assert spec["group"] == "aftershock.dev" and spec["scope"] == scope
        assert spec["names"] == {
            "kind": kind.KIND,
            "listKind": f"{kind.KIND}List",
            "plural": plural,
            "singular": singular,
            "shortNames": short,
            "categories": ["chaos"],
        }
        v = version(kind)
        assert (v["name"], v["served"], v["storage"]) == ("v1alpha1", True, True)
        assert v["subresources"] == {"status": {}}


def columns(kind: type[ResourceModel]) -> list[tuple[str, str, str]]:
    return [
        (c["name"], c["jsonPath"], c["type"])
        for c in version(kind)["additionalPrinterColumns"]
        if not c.get("priority")
    ]


def test_printer_columns() -> None:
    assert columns(ChaosExperiment) == [
        ("Ready", '.status.conditions[?(@.type=="Ready")].status', "string"),
        ("Schedule", ".spec.schedule", "string"),
        ("Last Run", ".status.lastRun.name", "string"),
        ("Verdict", ".status.lastRun.verdict", "string"),
        ("Severity", ".status.lastRun.severity", "string"),
        ("Recovery(s)", ".status.lastRun.recoverySeconds", "number"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ]
    assert columns(ChaosRun) == [
        ("Experiment", ".spec.experiment", "string"),
        ("Phase", ".status.phase", "string"),
        ("Verdict", ".status.verdict", "string"),
        ("Severity", ".status.severity", "string"),
        ("Recovery(s)", ".status.recoverySeconds", "number"),
        ("Probes", ".status.probeSummary", "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ]
    assert columns(ChaosPolicy) == [
        ("Suspended", ".spec.suspend", "boolean"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ]


def test_printer_columns_point_at_real_fields() -> None:
    for kind in KINDS:
        schema = openapi_schema(kind)
        for column in version(kind)["additionalPrinterColumns"]:
            path = column["jsonPath"].split("[")[0].strip(".").split(".")
            if path[0] == "metadata":
                continue
            node = schema
            for part in path:
                assert part in node.get("properties", {}), column["jsonPath"]
                node = node["properties"][part]


def test_experiment_cel_rules() -> None:
    schema = openapi_schema(ChaosExperiment)
    spec = schema["properties"]["spec"]["properties"]
    assert schema["x-kubernetes-validations"] == [
        {
            "rule": "size(self.metadata.name) <= 52",
            "message": "metadata.name must be at most 52 characters: run names append -<unix seconds> and must stay within 63",
        }
    ]
    fault_rules = spec["fault"]["x-kubernetes-validations"]
    assert fault_rules[0]["rule"] == (
        "(has(self.podDelete) ? 1 : 0) + (has(self.networkPartition) ? 1 : 0) + (has(self.litmus) ? 1 : 0)"
        " + (has(self.toxiproxy) ? 1 : 0) + (has(self.nodeDrain) ? 1 : 0) + (has(self.nodeTaint) ? 1 : 0) == 1"
    )
    assert (
        "one of: podDelete, networkPartition, litmus, toxiproxy, nodeDrain, nodeTaint"
        in fault_rules[0]["message"]
    )
    assert (
        fault_rules[1]["rule"]
        == "!(has(self.networkPartition) || has(self.litmus) || has(self.toxiproxy) || has(self.nodeDrain)"
        " || has(self.nodeTaint)) || has(self.duration)"
    )
    assert "fault.duration is required" in fault_rules[1]["message"]
    target_rules = {r["message"]: r for r in spec["target"]["x-kubernetes-validations"]}
    assert all(r["fieldPath"] == ".value" for r in target_rules.values())
    assert len(target_rules) == 3
    assert (
        spec["recovery"]["x-kubernetes-validations"][0]["rule"]
        == "duration(self.objective) <= duration(self.timeout)"
    )
    assert spec["recovery"]["default"] == {"objective": "30s", "timeout": "5m"}
    ns_rule = spec["target"]["properties"]["namespace"]["x-kubernetes-validations"][0]
    assert ns_rule["rule"] == "!(self in ['kube-system', 'kube-public', 'kube-node-lease'])"
    assert "x-kubernetes-validations" in spec["schedule"] and "x-kubernetes-validations" in spec["timeZone"]
    for duration in (
        spec["startingDeadline"],
        spec["fault"]["properties"]["duration"],
        spec["recovery"]["properties"]["timeout"],
    ):
        assert duration["pattern"] == "^([0-9]+(\\.[0-9]+)?(h|ms|us|ns|m|s))+$"


def test_run_spec_is_frozen_by_transition_rules() -> None:
    spec = openapi_schema(ChaosRun)["properties"]["spec"]
    for name in ("experiment", "scheduledTime", "target", "fault", "recovery", "dryRun"):
        last_rule = spec["properties"][name]["x-kubernetes-validations"][-1]
        assert last_rule["rule"] == "self == oldSelf", name
    assert "oldSelf" in spec["x-kubernetes-validations"][0]["rule"]
    assert spec["required"] == ["experiment"]


def test_rule_messages_are_human() -> None:
    for kind in KINDS:
        for rule in rules(openapi_schema(kind)):
            assert rule["message"] and rule["message"][0].islower() and not rule["message"].endswith(".")
            assert set(rule) <= {"rule", "message", "messageExpression", "fieldPath", "reason"}


@pytest.mark.parametrize(
    ("kind", "minimal"),
    [
        (
            ChaosExperiment,
            {
                "metadata": {"name": "e"},
                "spec": {
                    "target": {"kind": "Deployment", "selector": {"matchLabels": {"a": "b"}}},
                    "fault": {"podDelete": {}},
                },
            },
        ),
        (ChaosPolicy, {"metadata": {"name": "p"}}),
        (ChaosPolicy, {"metadata": {"name": "p"}, "spec": {"windows": [{"start": "09:00", "end": "17:00"}]}}),
        (ChaosRun, {"metadata": {"name": "r"}, "spec": {"experiment": "e", "recovery": {}}, "status": {}}),
    ],
)
def test_schema_defaults_match_model_defaults(kind: type[ResourceModel], minimal: dict[str, Any]) -> None:
    """What the apiserver stores after defaulting is what the operator assumes when a field is absent."""
    defaulted = apply_defaults(copy.deepcopy(minimal), openapi_schema(kind))
    from_model = kind.model_validate(minimal).to_json()
    from_server = kind.model_validate(defaulted).to_json()
    assert from_server == from_model


def test_to_structural_rejects_what_kubernetes_would() -> None:
    with pytest.raises(SchemaError, match="only optional fields"):
        to_structural(
            {"type": "object", "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}}
        )
    with pytest.raises(SchemaError, match="not allowed"):
        to_structural({"type": "object", "properties": {"x": {"type": "string", "oneOf": []}}})
    with pytest.raises(SchemaError, match="needs a type"):
        to_structural({"type": "object", "properties": {"x": {"description": "untyped"}}})


def test_to_structural_inlines_and_merges() -> None:
    schema = {
        "$defs": {
            "Thing": {
                "type": "object",
                "title": "Thing",
                "description": "model doc",
                "x-kubernetes-validations": [{"rule": "a"}],
            }
        },
        "type": "object",
        "properties": {
            "thing": {
                "anyOf": [{"$ref": "#/$defs/Thing"}, {"type": "null"}],
                "default": None,
                "description": "field doc",
                "x-kubernetes-validations": [{"rule": "b"}],
            },
            "free": {"type": "object", "additionalProperties": True},
            "fixed": {"const": "x", "type": "string"},
        },
        "required": ["thing", "fixed"],
    }
    assert to_structural(schema) == {
        "type": "object",
        "properties": {
            "thing": {
                "type": "object",
                "description": "field doc",
                "x-kubernetes-validations": [{"rule": "a"}, {"rule": "b"}],
            },
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "fixed": {"type": "string", "enum": ["x"]},
        },
        "required": ["fixed", "thing"],
    }


def test_output_is_deterministic_and_has_a_header() -> None:
    first, second = generate(), generate()
    assert first == second
    assert set(first) == {
        "chaosexperiments.aftershock.dev.yaml",
        "chaosruns.aftershock.dev.yaml",
        "chaospolicies.aftershock.dev.yaml",
    }
    for text in first.values():
        assert text.startswith(HEADER) and "make crds" in HEADER
        assert "&id" not in text and "*id" not in text  # no YAML anchors
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


def test_default_out_is_the_repo_crds_dir() -> None:
    assert DEFAULT_OUT == REPO / "crds"


def test_committed_crds_are_up_to_date() -> None:
    """Fails when the models changed but `make crds` was not run."""
    diffs = check(DEFAULT_OUT)
    assert not diffs, "crds/ is stale; run `make crds`:\n" + "".join(diffs)


def test_check_reports_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--out", str(tmp_path)]) == 1  # missing files are stale
    write(tmp_path)
    assert main(["--check", "--out", str(tmp_path)]) == 0
    path = tmp_path / "chaosruns.aftershock.dev.yaml"
    path.write_text(path.read_text().replace("crun", "cr"))
    capsys.readouterr()
    assert main(["--check", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "-    - cr\n+    - crun\n" in out.out
    assert "make crds" in out.err


def test_runs_as_a_module(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aftershock.api.crdgen", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(generate())
    assert "wrote" in result.stdout


def test_exclusive_bounds_become_openapi_3_0_flags() -> None:
    """pydantic's gt gives JSON Schema 2020's numeric exclusiveMinimum; the API server reads
    OpenAPI 3.0: minimum plus exclusiveMinimum: true (a number there refuses the whole CRD)."""
    spec = version(ChaosExperiment)["schema"]["openAPIV3Schema"]["properties"]["spec"]
    amplification = spec["properties"]["analysis"]["properties"]["retryStorm"]["properties"][
        "maxAmplification"
    ]
    assert (amplification["minimum"], amplification["exclusiveMinimum"]) == (1, True)
