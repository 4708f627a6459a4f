"""What the database benchmarks share: a PostgreSQL database of their own, dropped afterwards, and a timer.

    with scratch_database(admin_url, "assist_metrics") as (url, vacuum):
        ...load rows through url (SQLAlchemy's)...
        vacuum()  # what autovacuum does soon after a bulk load
"""

import contextlib
import statistics
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg


@contextlib.contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[tuple[str, Callable[[], None]]]:
    """A fresh database next to admin_url's: its SQLAlchemy URL, and a VACUUM ANALYZE of it (statistics, and the
    visibility map index-only scans need, as autovacuum has them soon after a bulk load). Dropped at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    server = admin_url.rsplit("/", 1)[0]

    def vacuum() -> None:
        with psycopg.connect(f"{server}/{name}", autocommit=True) as loaded:
            loaded.execute("VACUUM ANALYZE")

    try:
        yield server.replace("postgresql://", "postgresql+psycopg://") + f"/{name}", vacuum
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def timed(label: str, call: Callable[[], object], runs: int, width: int = 28) -> float:
    """Run call `runs` times; print and return the median in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    print(f"  {label:<{width}} p50 {median:8.1f} ms   max {max(times):8.1f} ms", flush=True)
    return median
