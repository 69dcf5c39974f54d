"""The key of the review stamps (core/review.py): a Secret in the operator's namespace, made by
the first replica that starts and read by every other one, so all of them (and the webhook they
serve) sign and verify alike. Deleting the Secret voids every stamp: objects must be re-applied.
"""

from __future__ import annotations

import base64
import secrets

from aftershock.kube import Kube

NAME = "aftershock-review-key"
FIELD = "hmac-sha256"
LABELS = {"app.kubernetes.io/part-of": "aftershock", "app.kubernetes.io/component": "review-key"}


def load_or_create(kube: Kube, namespace: str, name: str = NAME) -> bytes:
    """The key; created (32 random bytes) when there is none yet. A create that loses a race
    (409) reads the winner's."""
    for _ in range(3):
        found = kube.find_secret(namespace, name)
        if found is not None:
            value = (found.get("data") or {}).get(FIELD)
            if not value:
                raise RuntimeError(f"Secret {namespace}/{name} has no {FIELD} key")
            return base64.b64decode(value)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
            "data": {FIELD: base64.b64encode(secrets.token_bytes(32)).decode()},
        }
        kube.create_secret(namespace, body)
    raise RuntimeError(f"Secret {namespace}/{name} could neither be read nor created")
