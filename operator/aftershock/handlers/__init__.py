"""kopf handlers. Importing this package registers them; each module stays thin."""

from aftershock.handlers import experiments, runs, startup

__all__ = ["experiments", "runs", "startup"]
