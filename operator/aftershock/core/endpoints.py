"""Where probes, gates and analysis queries may connect: no server-side request forgery through
the operator.

The operator sits inside the cluster with a ServiceAccount token and a view of every namespace it
watches; a probe URL is a request it makes on an author's behalf. So:

- by default a probe may reach only Services of the run's target namespace
  (`NAME.NAMESPACE.svc`, `NAME.NAMESPACE.svc.cluster.local`);
- anything else must be listed in `endpoints.allow` of **every** ChaosPolicy (all policies apply,
  the strictest wins): host names (`prometheus.monitoring.svc`), suffix patterns
  (`*.monitoring.svc`), either with `:PORT`, CIDRs (`10.0.0.0/8`), addresses (`10.1.2.3`,
  `10.1.2.3:9090`);
- some addresses are never reached through a broad entry, only when named on their own: loopback
  and link-local (cloud metadata at 169.254.169.254) need an entry inside their range (`127.0.0.1`,
  `169.254.169.254/32`), the API server needs its exact `host:port`.

`refusal` judges a URL as written (admission, and before each request); `address_refusal` judges
the address a name resolved to, at connect time, because DNS may change between the two.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from aftershock.api.policy import ENDPOINT_PATTERN, ChaosPolicySpec

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: Final = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
LINK_LOCAL: Final = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
UNSPECIFIED: Final = (ipaddress.ip_network("0.0.0.0/32"), ipaddress.ip_network("::/128"))
API_SERVER_NAMES: Final = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
METADATA_NAMES: Final = ("metadata.google.internal", "metadata", "instance-data")
_SERVICE: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?$"
)


@dataclass(frozen=True)
class Entry:
    """One `endpoints.allow` entry, parsed."""

    text: str
    host: str | None = None  # an exact name, or the suffix after `*.`
    wildcard: bool = False
    network: IPNetwork | None = None
    port: int | None = None

    def matches_name(self, host: str, port: int) -> bool:
        if self.host is None or (self.port is not None and self.port != port):
            return False
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host

    def matches_address(self, address: IPAddress, port: int) -> bool:
        if self.network is None or (self.port is not None and self.port != port):
            return False
        return address.version == self.network.version and address in self.network


def parse_entry(text: str) -> Entry:
    """An `endpoints.allow` entry; ValueError with a message a person understands when malformed."""
    raw = text.strip().lower()
    if "://" in raw or "/" in raw.split("/", 1)[0] + ("/" if raw.count("/") > 1 else ""):
        raise ValueError(f"endpoints.allow entry {text!r} is a URL: list the host (and :PORT), not a URL")
    port: int | None = None
    host = raw
    bracketed = re.fullmatch(r"\[([0-9a-f:.]+)\]:([0-9]{1,5})", raw)
    if bracketed:
        host, port = bracketed[1], int(bracketed[2])
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
        port = int(port_text) if port_text.isdigit() else -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"endpoints.allow entry {text!r}: the port must be from 1 to 65535")
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        network = None
    if network is not None:
        if "/" in host and network.prefixlen < (8 if network.version == 4 else 16):
            raise ValueError(
                f"endpoints.allow entry {text!r} is wider than /8 (/16 for IPv6): list the networks"
                " probes need, not the whole address space"
            )
        return Entry(text, network=network, port=port)
    if not re.fullmatch(ENDPOINT_PATTERN, raw):
        raise ValueError(
            f"endpoints.allow entry {text!r} is not a host name, *.suffix, address or CIDR (optionally :PORT)"
        )
    wildcard = host.startswith("*.")
    return Entry(text, host=host[2:] if wildcard else host, wildcard=wildcard, port=port)


@dataclass(frozen=True)
class Target:
    """A URL's host and port, split once."""

    scheme: str
    host: str
    port: int
    address: IPAddress | None  # the host is an address literal


def split_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url} is not an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{url} carries user:password@; credentials do not belong in a spec")
    host = parts.hostname.lower().rstrip(".")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    return Target(parts.scheme, host, port, address)


@dataclass(frozen=True)
class EndpointRules:
    """What every policy allows (one list of entries per policy) for one run's target namespace,
    and the API server's own endpoints (`host:port` as the operator reaches it)."""

    namespace: str
    policies: Sequence[Sequence[Entry]]
    api_server: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls, namespace: str, allow_lists: Iterable[Iterable[str]], api_server: Iterable[tuple[str, int]] = ()
    ) -> EndpointRules:
        """Entries that do not parse are dropped (the policy schema refuses them; an older object
        must not widen anything)."""
        policies: list[list[Entry]] = []
        for allow in allow_lists:
            entries = []
            for text in allow:
                try:
                    entries.append(parse_entry(text))
                except ValueError:
                    continue
            policies.append(entries)
        return cls(namespace, policies, frozenset((h.lower(), p) for h, p in api_server))

    @classmethod
    def from_policies(
        cls,
        namespace: str,
        policies: Iterable[tuple[str, ChaosPolicySpec]],
        api_server: Iterable[tuple[str, int]] = (),
    ) -> EndpointRules:
        """The rules of these ChaosPolicies (name, spec) for a run's target namespace."""
        return cls.build(namespace, [spec.endpoints.allow for _name, spec in policies], api_server)

    def _own_service(self, host: str) -> bool:
        match = _SERVICE.match(host)
        return match is not None and match["ns"] == self.namespace

    def refusal(self, url: str) -> str | None:
        """Why the operator must not request `url` (None: it may), judged on the URL as written."""
        try:
            target = split_url(url)
        except ValueError as exc:
            return str(exc)
        if not self.policies:
            return f"{url}: no ChaosPolicy applies, so no endpoint is allowed"
        if target.address is not None:
            return self.address_refusal(url, target.host, target.address, target.port)
        if target.host in API_SERVER_NAMES or (target.host, target.port) in self.api_server:
            if not self._named_everywhere(target.host, target.port, exact_port=True):
                return (
                    f"{url} is the Kubernetes API server; probes never reach it unless every ChaosPolicy"
                    f" lists {target.host}:{target.port} in endpoints.allow"
                )
            return None
        if target.host in METADATA_NAMES or target.host == "localhost":
            if not self._named_everywhere(target.host, target.port, exact_port=False):
                return (
                    f"{url} names a machine-local or cloud-metadata host; probes never reach it unless"
                    f" every ChaosPolicy lists {target.host} itself in endpoints.allow"
                )
            return None
        if self._own_service(target.host):
            return None
        for number, entries in enumerate(self.policies):
            if not any(e.matches_name(target.host, target.port) for e in entries):
                return (
                    f"{url} is not a Service of the target namespace {self.namespace} and is not in"
                    f" endpoints.allow of every ChaosPolicy (policy {number + 1} of {len(self.policies)}"
                    " does not list it)"
                )
        return None

    def address_refusal(self, url: str, host: str, address: IPAddress, port: int) -> str | None:
        """Why the operator must not connect to `address` (what `host` is or resolved to)."""
        if not self.policies:
            return f"{url}: no ChaosPolicy applies, so no endpoint is allowed"
        if (str(address), port) in self.api_server or (host, port) in self.api_server:
            if not self._named_everywhere(str(address), port, exact_port=True):
                return (
                    f"{url} reaches the Kubernetes API server ({address}:{port}); probes never do unless"
                    f" every ChaosPolicy lists {address}:{port} in endpoints.allow"
                )
            return None
        for ranges, what in (
            (LOOPBACK, "loopback"),
            (LINK_LOCAL, "link-local (cloud metadata)"),
            (UNSPECIFIED, "unspecified"),
        ):
            if any(address.version == r.version and address in r for r in ranges):
                if all(self._explicit(entries, address, port, ranges) for entries in self.policies):
                    return None
                return (
                    f"{url} reaches the {what} address {address}; probes never do unless every ChaosPolicy"
                    f" lists that address itself (not a wider network) in endpoints.allow"
                )
        if host != str(address) and not _is_address(host):
            return None  # a name that refusal() allowed resolved to an ordinary address
        for number, entries in enumerate(self.policies):
            if not any(e.matches_address(address, port) for e in entries):
                return (
                    f"{url}: {address} is not in endpoints.allow of every ChaosPolicy (policy {number + 1}"
                    f" of {len(self.policies)} does not list it)"
                )
        return None

    def _named_everywhere(self, host: str, port: int, *, exact_port: bool) -> bool:
        for entries in self.policies:
            named = any(
                (
                    e.host == host
                    and not e.wildcard
                    and (e.port == port if exact_port else e.port in (None, port))
                )
                or (
                    e.network is not None
                    and _is_address(host)
                    and e.network.num_addresses == 1
                    and e.matches_address(ipaddress.ip_address(host), port)
                    and (e.port == port or not exact_port)
                )
                for e in entries
            )
            if not named:
                return False
        return True

    @staticmethod
    def _explicit(
        entries: Sequence[Entry], address: IPAddress, port: int, ranges: Sequence[IPNetwork]
    ) -> bool:
        """An entry inside the sensitive range itself that covers the address (not 0.0.0.0/0)."""
        for e in entries:
            if e.network is None or not e.matches_address(address, port):
                continue
            if any(e.network.version == r.version and e.network.subnet_of(r) for r in ranges):  # type: ignore[arg-type]
                return True
        return False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
