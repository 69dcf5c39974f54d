"""Review stamps: proof, carried by an object, that aftershock's admission webhook checked its author.

The webhook is the only place that knows who wrote an experiment (Kubernetes records no author).
When it is disabled, or its failurePolicy is Ignore and it is unreachable, an object reaches the
cluster unchecked — and a run would then do whatever any tenant with write access asked. So the
mutating webhook, after its checks pass, stamps the object with an HMAC over what it checked:
kind, namespace, name, the spec (normalised, so a CRD upgrade adding defaults does not void it),
the author, and either the object's UID (updates) or the time of the review (creates, before a UID
exists: the object must then have been created within `CREATE_WINDOW`, so a stamp copied onto a
re-created object is refused). The key lives in a Secret only the operator reads. Before a run
starts, the operator verifies the stamps; an unreviewed run ends Errored, nothing injected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from aftershock.api.experiment import ChaosExperimentSpec
from aftershock.api.run import ChaosRunSpec
from aftershock.core.times import parse_time

ANNOTATION = "aftershock.dev/review"
CREATE_WINDOW = dt.timedelta(seconds=60)
REASON = "AuthorNotReviewed"
SPECS: dict[str, type[BaseModel]] = {"ChaosExperiment": ChaosExperimentSpec, "ChaosRun": ChaosRunSpec}


class Unreviewed(Exception):
    """The object carries no valid review; the message says why, for a person."""


@dataclass(frozen=True)
class Review:
    author: str
    at: dt.datetime
    uid: str  # "" for a review made before the object existed (a create)


def spec_digest(kind: str, spec: Mapping[str, Any]) -> str:
    """A digest of what the spec means: parsed and dumped without defaults, so values the API
    server fills in (now or after a CRD upgrade) do not change it; raw when it does not parse."""
    try:
        canonical: Any = (
            SPECS[kind]
            .model_validate(dict(spec))
            .model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude_none=True)
        )
    except ValidationError:
        canonical = dict(spec)
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _name(meta: Mapping[str, Any]) -> str:
    name = meta.get("name")
    return f"name:{name}" if name else f"generateName:{meta.get('generateName') or ''}"


def _mac(key: bytes, kind: str, obj: Mapping[str, Any], review: Review) -> str:
    meta = obj.get("metadata") or {}
    message = "\n".join(
        [
            "aftershock-review-v1",
            kind,
            str(meta.get("namespace") or ""),
            _name(meta),
            review.uid,
            review.at.astimezone(dt.UTC).isoformat(),
            review.author,
            spec_digest(kind, obj.get("spec") or {}),
        ]
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def stamp(key: bytes, kind: str, obj: Mapping[str, Any], author: str, at: dt.datetime) -> str:
    """The annotation value recording that `author` was checked for this object as it is now."""
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    review = Review(author=author, at=at.replace(microsecond=0), uid=uid)
    return json.dumps(
        {
            "author": review.author,
            "at": review.at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "uid": review.uid,
            "mac": _mac(key, kind, obj, review),
        },
        separators=(",", ":"),
    )


def verify(key: bytes, kind: str, obj: Mapping[str, Any], *, admitting: bool = False) -> Review:
    """The review this object carries, checked; Unreviewed when it has none that holds for it.
    `admitting`: the object is being created and has no creation time yet (admission)."""
    meta = obj.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(ANNOTATION)
    if not raw:
        raise Unreviewed("it carries no review stamp from aftershock's admission webhook")
    try:
        data = json.loads(raw)
        at = parse_time(str(data["at"]))
        review = Review(author=str(data["author"]), at=at or dt.datetime.min, uid=str(data.get("uid") or ""))
        mac = str(data["mac"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unreviewed(f"its review annotation {ANNOTATION} is malformed") from exc
    if at is None or not hmac.compare_digest(mac, _mac(key, kind, obj, review)):
        raise Unreviewed(
            f"its review stamp does not match it (the spec, name or namespace was changed without a"
            f" review, or the annotation {ANNOTATION} was copied from another object)"
        )
    if review.uid:
        if review.uid != str(meta.get("uid") or ""):
            raise Unreviewed("its review stamp was made for another object of the same name")
        return review
    created = parse_time(meta.get("creationTimestamp"))
    if created is None and admitting:
        return review
    if created is None or abs(created - review.at) > CREATE_WINDOW:
        raise Unreviewed(
            f"its review stamp was made at {review.at.isoformat()} but the object was created at"
            f" {created.isoformat() if created else 'an unknown time'} (a stamp copied onto a"
            " re-created object)"
        )
    return review


def refusal(what: str, why: str) -> str:
    """The message of a run refused because nobody checked who wrote it."""
    return (
        f"{what} was never checked by the admission webhook: {why}; nothing was injected."
        " With the admission webhook disabled, or failurePolicy Ignore while it was unreachable,"
        " aftershock cannot tell who wrote an object, so it runs nothing unchecked: re-apply it (or"
        " annotate it) with the webhook running, which checks you as its author."
    )
