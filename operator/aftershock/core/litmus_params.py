"""What Litmus may be asked to do beyond its fault, decided without the API server.

- Version drift: the ChaosEngine's env overrides reach the experiment whether or not the installed
  ChaosExperiment defines them, and an experiment of another Litmus release simply ignores a
  parameter it does not read. `undefined_parameters` names them, so a run can refuse (Errored,
  listing them) instead of running a fault other than the one asked for.
- Probes: Litmus runs a ChaosEngine's probes with the chaos ServiceAccount's rights. `cmdProbe`
  runs commands with its token (or in a pod of its own), `k8sProbe` creates, deletes and reads
  objects. A probe type is allowed only where every ChaosPolicy lists it
  (`litmus.allowedProbeTypes`), and `probe_accesses` says what a probe does, as the requests its
  author must be allowed to make (SubjectAccessReview, engines/admission.py).
- The chaos ServiceAccount: naming one runs Litmus, and its probes, as that account. Kubernetes
  treats acting as a ServiceAccount as `impersonate serviceaccounts <name>` (the check its
  impersonation filter makes), so that is what the author must be allowed (`ACT_AS_ACCOUNT`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aftershock.api.policy import DEFAULT_PROBE_TYPES, ChaosPolicySpec, LitmusProbeType

Policies = Sequence[tuple[str, ChaosPolicySpec]]

# --- version drift ----------------------------------------------------------------------------


def defined_parameters(installed_experiment: Mapping[str, Any]) -> set[str]:
    """The env names a Litmus ChaosExperiment object defines (spec.definition.env)."""
    definition = (installed_experiment.get("spec") or {}).get("definition") or {}
    return {str(e["name"]) for e in definition.get("env") or [] if isinstance(e, Mapping) and e.get("name")}


def undefined_parameters(installed_experiment: Mapping[str, Any], params: Mapping[str, str]) -> list[str]:
    """The names in `params` (a run's `fault.litmus.env`) that the installed ChaosExperiment's
    spec.definition.env does not define, sorted; empty when it defines them all."""
    defined = defined_parameters(installed_experiment)
    return sorted(name for name in params if name not in defined)


def undefined_message(experiment: str, namespace: str, names: Sequence[str]) -> str:
    """The Errored message for a run whose env names parameters the installed version lacks."""
    return (
        f"the Litmus ChaosExperiment {experiment} installed in namespace {namespace} does not define"
        f" {', '.join(names)} (spec.definition.env): this Litmus version would ignore"
        f" {'it' if len(names) == 1 else 'them'} and run a different fault than asked. Install the"
        f" ChaosHub version aftershock's catalogue follows (chaos-charts 3.28.0) or remove"
        f" {'it' if len(names) == 1 else 'them'} from litmus.env; nothing was injected"
    )


UNDEFINED_REASON: Final = "LitmusParameterUndefined"

# --- probes -----------------------------------------------------------------------------------

KNOWN_PROBE_TYPES: Final = tuple(t.value for t in LitmusProbeType)


def allowed_probe_types(policies: Policies) -> set[str]:
    """The probe types every policy allows (the strictest wins); the default without a policy."""
    if not policies:
        return set(DEFAULT_PROBE_TYPES)
    allowed = set(KNOWN_PROBE_TYPES)
    for _, spec in policies:
        allowed &= _listed(spec)
    return allowed


def _listed(spec: ChaosPolicySpec) -> set[str]:
    return {str(t) for t in spec.litmus.allowed_probe_types}


def probe_type(probe: Mapping[str, Any]) -> str:
    return str(probe.get("type") or "")


def probe_label(index: int, probe: Mapping[str, Any]) -> str:
    name = probe.get("name")
    return f"litmus.probes[{index}]" + (f" ({name})" if name else "")


def probe_policy_problem(policies: Policies, probes: Sequence[Mapping[str, Any]]) -> str | None:
    """Why the probes may not run under these policies (None: they may). Unknown types are refused
    too: aftershock cannot say what they would do."""
    allowed = allowed_probe_types(policies)
    for index, probe in enumerate(probes):
        kind = probe_type(probe)
        label = probe_label(index, probe)
        if kind not in KNOWN_PROBE_TYPES:
            return (
                f"{label} has type {kind or '(none)'}: Litmus probes must be one of"
                f" {', '.join(KNOWN_PROBE_TYPES)}"
            )
        if kind not in allowed:
            return _not_allowed(label, kind, policies, allowed)
    return None


def _not_allowed(label: str, kind: str, policies: Policies, allowed: set[str]) -> str:
    listing = ", ".join(t for t in KNOWN_PROBE_TYPES if t in allowed) or "none"
    if not policies:
        where = f"without a ChaosPolicy only the defaults ({', '.join(DEFAULT_PROBE_TYPES)}) are allowed"
        fix = f"create a ChaosPolicy whose litmus.allowedProbeTypes lists {kind}"
    else:
        refusing = [name for name, spec in policies if kind not in _listed(spec)]
        verb = "does" if len(refusing) == 1 else "do"
        where = (
            f"ChaosPolicy {', '.join(refusing)} {verb} not list it in litmus.allowedProbeTypes"
            f" (allowed: {listing})"
        )
        fix = f"add {kind} there"
    return f"{label} is a {kind}, and {where}: {_power(kind)}. Use an allowed probe type, or {fix}"


def _power(kind: str) -> str:
    if kind == LitmusProbeType.CMD.value:
        return "a cmdProbe runs commands with the chaos ServiceAccount's token (or in a pod of its own)"
    if kind == LitmusProbeType.K8S.value:
        return "a k8sProbe creates, deletes and reads objects with the chaos ServiceAccount's rights"
    return "probe types are allowed only when listed"


@dataclass(frozen=True)
class Access:
    """One request a probe makes: what its author must be allowed to do directly.
    `namespace` "" means cluster-wide (a k8sProbe without a namespace)."""

    verb: str
    group: str
    resource: str
    namespace: str
    subresource: str | None = None

    def describe(self) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        if self.group:
            what = f"{what}.{self.group}"
        return f"{self.verb} {what}" + (
            f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        )


_K8S_INPUTS: Final = "k8sProbe/inputs"
_READ_BY_NAME: Final = ("get",)
_READ_BY_SELECTOR: Final = ("list",)


def k8s_probe_problem(index: int, probe: Mapping[str, Any]) -> str | None:
    """A k8sProbe aftershock cannot review (what it would touch is not said)."""
    inputs = probe.get(_K8S_INPUTS)
    label = probe_label(index, probe)
    if not isinstance(inputs, Mapping) or not inputs.get("resource") or not inputs.get("version"):
        return (
            f"{label} is a k8sProbe without {_K8S_INPUTS}.version and .resource: what it touches is unknown"
        )
    operation = str(inputs.get("operation") or "").lower()
    if operation not in ("create", "delete", "present", "absent"):
        return f"{label} has operation {operation or '(none)'}: a k8sProbe's operation is create, delete, present or absent"
    if "/" in str(inputs["resource"]):
        return f"{label} names the resource {inputs['resource']}: a k8sProbe acts on a resource, not a subresource"
    return None


def probe_accesses(probe: Mapping[str, Any], target_namespace: str) -> list[Access]:
    """What a probe does, as requests its author must be allowed to make.

    k8sProbe: the verbs its operation uses on the resource it names, in the namespace it names
    (none: cluster-wide, which is what Litmus then asks for). create → create; delete → delete (and
    list when it deletes by selector); present/absent → get by name, list by selector. cmdProbe:
    Litmus runs it in its experiment pod, or (with `source`) in a new pod of the probe's image, in
    the target namespace: `create pods` there. httpProbe and promProbe only read over the network."""
    kind = probe_type(probe)
    if kind == LitmusProbeType.CMD.value:
        return [Access("create", "", "pods", target_namespace)]
    if kind != LitmusProbeType.K8S.value:
        return []
    inputs = probe.get(_K8S_INPUTS)
    if not isinstance(inputs, Mapping):
        return []
    group = str(inputs.get("group") or "")
    resource = str(inputs.get("resource") or "")
    namespace = str(inputs.get("namespace") or "")
    by_name = bool(str(inputs.get("resourceNames") or "").strip())
    operation = str(inputs.get("operation") or "").lower()
    verbs: tuple[str, ...]
    if operation == "create":
        verbs = ("create",)
    elif operation == "delete":
        verbs = ("delete",) if by_name else ("delete", "list")
    else:
        verbs = _READ_BY_NAME if by_name else _READ_BY_SELECTOR
    return [Access(verb, group, resource, namespace) for verb in verbs]


# --- the chaos ServiceAccount ------------------------------------------------------------------

ACT_AS_ACCOUNT: Final = Access("impersonate", "", "serviceaccounts", "")
"""The request Kubernetes authorizes when someone acts as a ServiceAccount (its impersonation
filter); reviewed with the account's namespace and name."""


def account_refusal(user: str, account: str, namespace: str) -> str:
    return (
        f"{user} may not impersonate serviceaccount {account} in namespace {namespace}, so may not run"
        f" Litmus as it (chaosServiceAccount): Litmus and its probes act with that account's rights, and"
        " an experiment can do no more than its author could do directly. Name a ServiceAccount you may"
        " impersonate, or set provisionServiceAccount: true"
    )


def probe_refusal(user: str, label: str, kind: str, access: Access) -> str:
    return (
        f"{user} may not {access.describe()}, which {label} ({kind}) would do with the chaos"
        " ServiceAccount's rights: a probe can do no more than its author could do directly"
    )
