"""kopf handlers. Importing this package registers them; each module stays thin.

The admission webhooks (handlers/admission.py) are registered separately, only when a webhook
port is configured: kopf refuses to start with admission handlers but no server.
"""

from aftershock.handlers import policies, runs, schedules, startup

__all__ = ["policies", "runs", "schedules", "startup"]
