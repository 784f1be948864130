#!/usr/bin/env python3
"""Writes OpenMetrics files with explicit timestamps for the bytes-per-sample benchmark.

  gen-bench-data.py randomwalk OUT [--series 1000] [--hours 6] [--step 15]
      Deterministic (seeded) mix: a third counters (small integer increments), a third
      random-walk gauges (3 decimals), a third noisy float gauges.
  gen-bench-data.py node OUT --url URL [--scrapes 240] [--every 0.5] [--step 15]
  gen-bench-data.py dashboard OUT [--hours 6] [--step 30]
      10,000 series a dashboard reads: 6,000 request counters (50 services x 20
      instances x code x method) and 400 classic histograms of 10 buckets.
      Real node_exporter scrapes taken every EVERY seconds, laid out STEP seconds apart.

Each series' samples are contiguous and in time order, as OpenMetrics requires.
"""
import argparse
import random
import re
import time
import urllib.request

T0 = 1_700_000_000  # seconds; a fixed start so runs are comparable


def randomwalk(out, series, hours, step):
    rng = random.Random(42)
    points = int(hours * 3600 / step)
    with open(out, "w") as f:
        for s in range(series):
            kind = s % 3
            name = ("bench_requests_total", "bench_queue_depth", "bench_latency_seconds")[kind]
            if s < 3:
                f.write(f"# TYPE {name} unknown\n")
            v = float(rng.randint(0, 1000)) if kind == 0 else rng.uniform(0, 1000)
            lines = []
            for i in range(points):
                if kind == 0:
                    v += rng.randint(0, 20)
                elif kind == 1:
                    v = round(v + rng.gauss(0, 1), 3)
                else:
                    v = rng.lognormvariate(-3, 0.5)
                lines.append(f'{name}{{series="{s}"}} {v!r} {T0 + i * step}\n')
            f.writelines(lines)
        f.write("# EOF\n")
    # Families must be contiguous: rewrite grouped by name.
    regroup(out)


def dashboard(out, hours, step):
    rng = random.Random(7)
    points = int(hours * 3600 / step)
    bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
    with open(out, "w") as f:
        f.write("# TYPE bench_http_requests_total unknown\n")
        for svc in range(50):
            for inst in range(20):
                for code in ("200", "500"):
                    for method in ("GET", "POST", "PUT"):
                        base = rng.uniform(0.5, 20) * (0.02 if code == "500" else 1)
                        v = 0
                        labels = f'service="s{svc}",instance="i{inst}",code="{code}",method="{method}"'
                        lines = []
                        for i in range(points):
                            v += int(base * step * rng.uniform(0.8, 1.2))
                            lines.append(f"bench_http_requests_total{{{labels}}} {v} {T0 + i * step}\n")
                        f.writelines(lines)
        f.write("# TYPE bench_http_request_duration_seconds_bucket unknown\n")
        for svc in range(50):
            for inst in range(8):
                labels = f'service="s{svc}",instance="i{inst}"'
                counts = [0] * len(bounds)
                series = [[] for _ in bounds]
                for i in range(points):
                    running = 0
                    for b in range(len(bounds)):
                        running += rng.randint(0, 30)
                        counts[b] += running
                    # Cumulative across buckets: bucket b holds everything below it.
                    acc = 0
                    for b in range(len(bounds)):
                        acc = max(acc, counts[b])
                        series[b].append(f'bench_http_request_duration_seconds_bucket{{{labels},le="{bounds[b]}"}} {acc} {T0 + i * step}\n')
                for lines in series:
                    f.writelines(lines)
        f.write("# EOF\n")


def regroup(path):
    by_name = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            by_name.setdefault(line.split("{", 1)[0].split(" ", 1)[0], []).append(line)
    with open(path, "w") as f:
        for name, lines in by_name.items():
            f.write(f"# TYPE {name} unknown\n")
            f.writelines(lines)
        f.write("# EOF\n")


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def node(out, url, scrapes, every, step):
    series = {}  # key -> list of values
    for _ in range(scrapes):
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        for line in body.splitlines():
            m = SAMPLE.match(line)
            if not m or line.startswith("#"):
                continue
            key = (m.group(1), m.group(2) or "")
            series.setdefault(key, []).append(m.group(3))
        time.sleep(every)
    with open(out, "w") as f:
        names = sorted({k[0] for k in series})
        for name in names:
            f.write(f"# TYPE {name} unknown\n")
            for key in sorted(k for k in series if k[0] == name):
                for i, v in enumerate(series[key]):
                    f.write(f"{name}{key[1]} {v} {T0 + i * step}\n")
        f.write("# EOF\n")


def main():
    global T0
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["randomwalk", "node", "dashboard"])
    p.add_argument("out")
    p.add_argument("--series", type=int, default=1000)
    p.add_argument("--hours", type=float, default=6)
    p.add_argument("--step", type=int, default=15)
    p.add_argument("--url")
    p.add_argument("--scrapes", type=int, default=240)
    p.add_argument("--every", type=float, default=0.5)
    p.add_argument("--t0", type=int, default=T0, help="first timestamp, in seconds")
    a = p.parse_args()
    T0 = a.t0
    if a.kind == "randomwalk":
        randomwalk(a.out, a.series, a.hours, a.step)
    elif a.kind == "dashboard":
        dashboard(a.out, a.hours, a.step)
    else:
        node(a.out, a.url, a.scrapes, a.every, a.step)


if __name__ == "__main__":
    main()
