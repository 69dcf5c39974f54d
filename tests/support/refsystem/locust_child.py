"""The load generator's child process: locust, headless, as a library, against one loopback URL.

Run by path (`python locust_child.py --url ... --rate ... --users ... --seconds ...`) from load.py,
never imported: `import locust` monkey-patches the process with gevent, so nothing of the tests'
packages is loaded here (and, patched, threading.Event and signal.signal are gevent's). Prints `{"event": "started"}` once users are being
spawned and `{"event": "summary", ...}` (load.LoadSummary's fields) when the time is up or on
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import signal
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import locust  # monkey-patches socket, ssl, threading, signal and time with gevent
from locust.env import Environment


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", default="/checkout")
    parser.add_argument("--rate", type=float, required=True, help="requests/s, all users together")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--timeout", type=float, default=60.0, help="per request")
    args = parser.parse_args(argv)
    if not _loopback(args.url):
        parser.error(f"load is only ever sent to loopback addresses, not {args.url!r}")

    request_path: str = args.path
    period = args.users / args.rate  # seconds between one user's requests

    class Client(locust.FastHttpUser):
        host = args.url
        network_timeout = args.timeout
        connection_timeout = args.timeout
        next_at = 0.0  # when this user's next request is due

        def on_start(self) -> None:
            # a random phase per user, or users spawned together send in bursts of `users`
            time.sleep(random.uniform(0, period))
            self.next_at = time.monotonic()

        def wait_time(self) -> float:
            # one request per period from the first one on (locust's constant_pacing counts from
            # the spawn, which would undo the phase); a late request is followed at once, no burst
            now = time.monotonic()
            self.next_at = max(self.next_at + period, now)
            return self.next_at - now

        @locust.task
        def checkout(self) -> None:
            self.client.get(request_path)

    times: list[float] = []
    codes: dict[str, int] = {}

    def on_request(response_time: float, response: Any = None, **_: Any) -> None:
        code = str(getattr(response, "status_code", 0) or 0)
        codes[code] = codes.get(code, 0) + 1
        times.append(float(response_time))

    environment = Environment(user_classes=[Client])
    environment.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    runner = environment.create_local_runner()
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    started = time.monotonic()
    # all users at once; their random phases spread the first requests over one period, so the
    # rate is steady from the start
    runner.start(args.users, spawn_rate=args.users)
    print(json.dumps({"event": "started"}), flush=True)
    done.wait(timeout=args.seconds)
    runner.quit()
    elapsed = time.monotonic() - started
    ordered = sorted(times)
    ok = sum(n for code, n in codes.items() if code.startswith("2"))
    summary = {
        "event": "summary",
        "requests": len(times),
        "failures": len(times) - ok,
        "codes": codes,
        "seconds": round(elapsed, 3),
        "rps": round(len(times) / elapsed, 3) if elapsed > 0 else 0.0,
        "median_ms": _percentile(ordered, 0.5),
        "p95_ms": _percentile(ordered, 0.95),
        "p99_ms": _percentile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else 0.0,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
