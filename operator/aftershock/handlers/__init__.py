"""kopf handlers. Importing this package registers them; each module stays thin."""

from aftershock.handlers import admission, experiments, policies, runs, schedules, startup

__all__ = ["admission", "experiments", "policies", "runs", "schedules", "startup"]
