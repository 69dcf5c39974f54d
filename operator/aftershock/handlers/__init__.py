"""kopf handlers. Importing this package registers them; each module stays thin."""

from aftershock.handlers import experiments, runs, schedules, startup

__all__ = ["experiments", "runs", "schedules", "startup"]
