"""The worker's Prometheus metrics (prometheus_client), recorded by `ConversionMetrics`
(middleware/conversion_metrics.py).

`transmute worker` serves them at `TRANSMUTE_METRICS_PORT` (default 9191) `/metrics` from its supervisor,
summed over its worker processes with prometheus_client's multiprocess mode (the supervisor sets
PROMETHEUS_MULTIPROC_DIR before it starts them). In embedded mode they are in the gateway's `/metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONVERSIONS = Counter(
    "transmute_conversions",
    "Conversion attempts that ended, by format and outcome: done, failed, cancelled (by the user, before or "
    "while it ran), stalled (its progress stood still; tried once more), retried (an error; Dramatiq tries "
    "again), interrupted (stopped by a shutdown, handed back "
    "to the queue)",
    ["format", "outcome"],
)
CONVERSION_SECONDS = Histogram(
    "transmute_conversion_seconds",
    "Seconds one conversion attempt took (fetching the source, converting, storing the result)",
    ["format"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
IN_FLIGHT = Gauge(
    "transmute_conversions_in_flight",
    "Conversion attempts running now",
    multiprocess_mode="livesum",
)
