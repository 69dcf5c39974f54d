"""A stand-in for a litmus-go helper (`./helpers -name network-chaos`, stress-chaos, …), tests only.

The real helpers inject through a container runtime socket or `tc` inside the target pod's network
namespace; neither exists on the kwok test cluster. The real experiment still creates the helper
pod, waits for it to run and to finish, and reads its end: that is what this plays. It stays up for
the helper's TOTAL_CHAOS_DURATION and exits 0, as a helper that injected and reverted would; a
SIGTERM (the pod deleted, e.g. on `engineState: stop`) ends it at once with 0, as the real helpers
revert and exit. Usage: helper_stand_in.py NAME [MODE]; MODE `hang` stays up until stopped, `fail`
fails as the real helper does on a node without a container runtime: it writes its error into the
ChaosResult's errorOutput (CONTAINER_RUNTIME_ERROR) and exits 1 (LitmusPrograms.helper_mode sets the
mode for a test).
"""

from __future__ import annotations

import os
import signal
import sys
import time


def report_failure(name: str) -> None:
    """What a litmus-go helper does when it fails (result.UpdateFailedStepFromHelper): the error goes
    into the ChaosResult <engine>-<experiment>[-<instance>] that the experiment then finishes."""
    from kubernetes import client, config

    config.load_kube_config(os.environ["KUBECONFIG"])
    result = f"{os.environ['CHAOSENGINE']}-{os.environ['EXPERIMENT_NAME']}"
    if os.environ.get("INSTANCE_ID"):
        result += f"-{os.environ['INSTANCE_ID']}"
    error = {
        "errorCode": "CONTAINER_RUNTIME_ERROR",
        "reason": f"{name}: no container runtime socket on this node",
    }
    client.CustomObjectsApi().patch_namespaced_custom_object(
        "litmuschaos.io",
        "v1alpha1",
        os.environ["CHAOS_NAMESPACE"],
        "chaosresults",
        result,
        {"status": {"experimentStatus": {"errorOutput": error}}},
    )
    print(f"failed: wrote {error} into ChaosResult {result}", flush=True)


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "?"
    mode = sys.argv[2] if len(sys.argv) > 2 else "pass"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    duration = float(os.environ.get("TOTAL_CHAOS_DURATION") or 30)
    print(
        f"stand-in for the litmus-go helper {name}: mode {mode}, targets {os.environ.get('TARGETS')}",
        flush=True,
    )
    if mode == "fail":
        report_failure(name)
        return 1
    end = time.monotonic() + (float("inf") if mode == "hang" else duration)
    while time.monotonic() < end:
        time.sleep(min(0.5, max(0.0, end - time.monotonic())))
    print("chaos duration over: reverted (nothing was injected)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
