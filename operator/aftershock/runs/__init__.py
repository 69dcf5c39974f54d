"""The run lifecycle: journal (transitions, claims), targeting, observation and the driver that
strings them together as one asyncio task per active run."""

from aftershock.cluster.io import Io
from aftershock.runs.base import Abort, LostClaim, RunEnv, Stop
from aftershock.runs.driver import RunDriver

__all__ = ["Abort", "Io", "LostClaim", "RunDriver", "RunEnv", "Stop"]
