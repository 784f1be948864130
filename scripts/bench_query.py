#!/usr/bin/env python3
"""Times dashboard-style range queries on two Prometheus-API servers holding the same
data, and prints p50/p99 latency per query and the Sextant / Prometheus ratio.

Usage: bench_query.py PROMETHEUS_URL SEXTANT_URL START END [--step 60] [--runs 20]
"""

import argparse
import json
import subprocess
import time
import urllib.parse
import urllib.request

QUERIES = [
    ("rate over counters", "rate(bench_http_requests_total[5m])"),
    ("sum by of rates", "sum by (service) (rate(bench_http_requests_total[5m]))"),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le, service) (rate(bench_http_request_duration_seconds_bucket[5m])))",
    ),
    ("topk", "topk(5, sum by (service, instance) (rate(bench_http_requests_total[5m])))"),
]


def run(base, q, start, end, step):
    data = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step}).encode()
    t0 = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(base + "/api/v1/query_range", data=data), timeout=600) as r:
        body = r.read()
    took = time.perf_counter() - t0
    v = json.loads(body)
    assert v["status"] == "success", v
    return took, v["data"]["result"]


def timed(base, q, start, end, step):
    """The whole HTTP exchange as curl times it, the body read and discarded. Python's
    urllib reads a 63 MB answer at about 100 MB/s, slower than either server writes
    it, so its timing of the large `rate` answer measured mostly the client."""
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
         base + "/api/v1/query_range", "--data-urlencode", f"query={q}",
         "-d", f"start={start}", "-d", f"end={end}", "-d", f"step={step}"],
        capture_output=True, text=True, check=True, timeout=600,
    )
    code, took = out.stdout.split()
    assert code == "200", out.stdout
    return float(took)


def percentile(xs, p):
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prometheus")
    ap.add_argument("sextant")
    ap.add_argument("start", type=int)
    ap.add_argument("end", type=int)
    ap.add_argument("--step", type=int, default=60)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    print(f"range {(a.end - a.start) / 3600:.1f}h at {a.step}s steps, {a.runs} runs each, after one warm-up run")
    print(f"{'query':22} {'series':>6} {'prom p50':>9} {'prom p99':>9} {'sx p50':>9} {'sx p99':>9} {'p50 ratio':>9} {'p99 ratio':>9}")
    for name, q in QUERIES:
        stats = {}
        for server in ("prometheus", "sextant"):
            base = getattr(a, server)
            _, result = run(base, q, a.start, a.end, a.step)  # warm-up, and the answer checked
            times = [timed(base, q, a.start, a.end, a.step) for _ in range(a.runs)]
            stats[server] = (percentile(times, 50), percentile(times, 99), len(result))
        (pp50, pp99, n), (sp50, sp99, _) = stats["prometheus"], stats["sextant"]
        print(
            f"{name:22} {n:>6} {pp50 * 1000:>7.0f}ms {pp99 * 1000:>7.0f}ms {sp50 * 1000:>7.0f}ms {sp99 * 1000:>7.0f}ms"
            f" {sp50 / pp50:>8.2f}x {sp99 / pp99:>8.2f}x"
        )


if __name__ == "__main__":
    main()
