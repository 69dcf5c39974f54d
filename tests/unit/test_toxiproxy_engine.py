"""fault.toxiproxy: the schema, and the toxic names that make adding idempotent and revert exact."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aftershock.api.experiment import Fault
from aftershock.engines.toxiproxy import run_of, toxic_name


def fault(**toxiproxy: Any) -> Fault:
    body = {"endpoint": "http://toxiproxy.shop.svc:8474", "proxy": "redis", "toxics": [{"type": "latency"}]}
    return Fault.model_validate({"duration": "30s", "toxiproxy": {**body, **toxiproxy}})


def test_a_toxiproxy_fault_with_defaults() -> None:
    f = fault(
        toxics=[{"type": "latency", "attributes": {"latency": 1000, "jitter": 50}}, {"type": "timeout"}]
    )
    assert f.kind == "toxiproxy" and f.toxiproxy is not None
    first = f.toxiproxy.toxics[0]
    assert (str(first.stream), first.toxicity, first.attributes) == (
        "downstream",
        1.0,
        {"latency": 1000, "jitter": 50},
    )


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            {"toxics": [{"type": "latency", "attributes": {"rate": 10}}]},
            "a latency toxic takes the attributes latency, jitter",
        ),
        ({"toxics": [{"type": "earthquake"}]}, "Input should be"),
        ({"toxics": [{"type": "latency", "toxicity": 1.5}]}, "less than or equal to 1"),
        ({"toxics": []}, "at least 1 item"),
        ({"proxy": "no spaces"}, "Toxiproxy proxy name"),
        ({"endpoint": "toxiproxy:8474"}, "http:// or https:// URL"),
    ],
)
def test_malformed_toxiproxy_faults_are_refused(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        fault(**change)


def test_a_toxiproxy_fault_needs_a_duration() -> None:
    with pytest.raises(ValidationError, match=r"fault\.duration is required"):
        Fault.model_validate(
            {"toxiproxy": {"endpoint": "http://t:8474", "proxy": "redis", "toxics": [{"type": "latency"}]}}
        )


def test_toxic_names_carry_the_run_and_nothing_else_is_ours() -> None:
    name = toxic_name("shop", "0c1d2e3f-aaaa-bbbb-cccc-1234567890ab", 2)
    assert name == "aftershock.shop.0c1d2e3f-aaaa-bbbb-cccc-1234567890ab.2"
    assert run_of(name) == ("shop", "0c1d2e3f-aaaa-bbbb-cccc-1234567890ab")
    for theirs in (
        "latency_downstream",
        "aftershock",
        "aftershock.shop.uid",
        "aftershock.shop.uid.x",
        "other.shop.uid.0",
    ):
        assert run_of(theirs) is None
