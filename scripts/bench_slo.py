#!/usr/bin/env python3
"""SLO evaluation cost, Sextant against Prometheus 2.42 evaluating Sloth's rules.

Both hold the same data: DAYS of history for SLOS services (two request counters
each, `code="200"` and `code="500"`, at a different error ratio per service), written
as OpenMetrics and loaded with `promtool tsdb create-blocks-from openmetrics` and
Sextant's `om_import`, then scraped live from this script every minute. One more SLO,
`bench-long`, has 30 days of history, and Prometheus also gets 30 days of the
`slo:sli_error:ratio_rate5m` series Sloth's rules would have recorded for it, so its
period rule reads what it reads in steady state.

Each server runs alone on core 0 (this script and its target on core 1):
1. without rules or SLOs, its idle CPU per second is measured;
2. the SLOs are loaded by reload: Prometheus gets the rules `sextant slo generate`
   writes (3 groups per SLO, evaluated every 30s), Sextant the spec (evaluated every
   30s); Sextant's backfill is waited for and timed;
3. process CPU over MEASURE seconds, less the idle CPU, per 30s evaluation cycle. The
   servers' own figures are printed beside it (Prometheus' summed
   `prometheus_rule_group_last_duration_seconds`, Sextant's
   `sextant_slo_cycle_duration_seconds`).

Then the cost of the 30-day window of one SLO: Prometheus' period rule
(`sum_over_time(...[30d]) / count_over_time(...[30d])` over the recorded 5m ratio)
as an instant query, against Sextant's whole status of that SLO
(`/api/sextant/v1/slos/bench-long`: every window, the period, budget, tiers and
calendar weeks and months, from slices), p50 of RUNS calls each.

Usage: bench_slo.py SEXTANT OM_IMPORT [--slos 1000] [--days 3] [--measure 300] [--runs 20]
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

STEP = 60  # seconds between samples, history and live
INTERVAL = 30  # evaluation interval of both
LONG_DAYS = 30
RATE = 10.0  # requests per second per service


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_ratio(i):
    """Per service: 0.05% to 2.5%, so some SLOs burn and some do not."""
    return 0.0005 + (i * 7919 % 50) / 2000


class Counters:
    """Counter values as functions of time since ORIGIN, so history and live agree."""

    def __init__(self, slos, origin):
        self.slos = slos
        self.origin = origin

    def series(self):
        for i in range(self.slos):
            yield f'bench_requests_total{{service="s{i}",code="500"}}', RATE * error_ratio(i)
            yield f'bench_requests_total{{service="s{i}",code="200"}}', RATE * (1 - error_ratio(i))
        yield 'bench_long_requests_total{code="500"}', RATE * 0.0008
        yield 'bench_long_requests_total{code="200"}', RATE * (1 - 0.0008)

    def value(self, per_second, t):
        return int(per_second * (t - self.origin))

    def render(self, t):
        return "".join(f"{s} {self.value(r, t)}\n" for s, r in self.series()).encode()


def write_history(path, counters, start, end, long_start):
    """OpenMetrics with timestamps, one family after another, each series contiguous."""
    with open(path, "w") as f:
        f.write("# TYPE bench_requests_total unknown\n")
        for name, rate in counters.series():
            if name.startswith("bench_long"):
                continue
            f.writelines(f"{name} {counters.value(rate, t)} {t}\n" for t in range(start, end + 1, STEP))
        f.write("# TYPE bench_long_requests_total unknown\n")
        for name, rate in counters.series():
            if name.startswith("bench_long"):
                f.writelines(f"{name} {counters.value(rate, t)} {t}\n" for t in range(long_start, end + 1, STEP))
        # What Sloth's 5m SLI rule would have recorded for bench-long every 30s.
        f.write("# TYPE slo:sli_error:ratio_rate5m unknown\n")
        labels = 'sloth_id="bench-long",sloth_service="bench",sloth_slo="long",sloth_window="5m"'
        f.writelines(f"slo:sli_error:ratio_rate5m{{{labels}}} 0.0008 {t}\n"
                     for t in range(long_start, end + 1, INTERVAL))
        f.write("# EOF\n")


def write_spec(path, slos):
    with open(path, "w") as f:
        f.write("version: prometheus/v1\nservice: bench\nslos:\n")
        for i in range(slos):
            f.write(f"""  - name: s{i}
    objective: 99
    sli:
      events:
        error_query: sum(rate(bench_requests_total{{service="s{i}",code="500"}}[{{{{.window}}}}]))
        total_query: sum(rate(bench_requests_total{{service="s{i}"}}[{{{{.window}}}}]))
    alerting: {{name: Bench{i}}}
""")
        f.write("""  - name: long
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(bench_long_requests_total{code="500"}[{{.window}}]))
        total_query: sum(rate(bench_long_requests_total[{{.window}}]))
    alerting: {name: BenchLong}
""")


def serve(counters, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = counters.render(time.time())
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def get(url, data=None, timeout=300):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def wait_ready(url, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            get(url, timeout=2)
            return
        except Exception:
            time.sleep(0.5)
    raise SystemExit(f"not ready: {url}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(base, name):
    """Sum of a metric's samples on a /metrics page."""
    total = 0.0
    for line in get(base + "/metrics").decode().splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def measure(pid, seconds):
    c0, t0 = cpu_seconds(pid), time.time()
    time.sleep(seconds)
    return cpu_seconds(pid) - c0, time.time() - t0


def p50(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure_prometheus(args, work, scrape, rules, procs):
    """Idle CPU per second, CPU per cycle, own figure, 30d window p50, its answer."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cfg = os.path.join(work, "prometheus.yml")
    head = f"global: {{evaluation_interval: {INTERVAL}s}}\nscrape_configs:\n{scrape}"
    with open(cfg, "w") as f:
        f.write(head)
    p = subprocess.Popen(["taskset", "-c", "0", args.prometheus, f"--config.file={cfg}",
                          f"--storage.tsdb.path={os.path.join(work, 'prom-data')}",
                          "--storage.tsdb.retention.time=100y", "--web.enable-lifecycle",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prom.log"), "w"))
    procs.append(p)
    wait_ready(base + "/-/ready")
    time.sleep(30)
    idle, secs = measure(p.pid, args.idle)
    with open(cfg, "w") as f:
        f.write(head + f"rule_files: [{rules}]\n")
    get(base + "/-/reload", data=b"")
    time.sleep(2 * INTERVAL)
    cpu, secs2 = measure(p.pid, args.measure)
    own = metric(base, "prometheus_rule_group_last_duration_seconds")
    period = ('sum_over_time(slo:sli_error:ratio_rate5m{sloth_id="bench-long"}[30d]) / ignoring (sloth_window) '
              'count_over_time(slo:sli_error:ratio_rate5m{sloth_id="bench-long"}[30d])')
    q = base + "/api/v1/query?" + urllib.parse.urlencode({"query": period})
    answer = json.loads(get(q))["data"]["result"]
    window = p50(lambda: get(q), args.runs)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    return (idle / secs, (cpu - idle / secs * secs2) / (secs2 / INTERVAL), own, window,
            answer[0]["value"][1] if answer else None)


def measure_sextant(args, work, scrape, spec, procs):
    """As measure_prometheus, plus the backfill's wall time and CPU."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cfg = os.path.join(work, "sextant.yml")
    head = (f"global: {{evaluation_interval: {INTERVAL}s}}\nstorage: {{retention: 0s}}\n"
            f"slo: {{interval: {INTERVAL}s}}\nscrape_configs:\n{scrape}")
    with open(cfg, "w") as f:
        f.write(head)
    p = subprocess.Popen(["taskset", "-c", "0", args.sextant, "serve", "--config", cfg,
                          "--data-dir", os.path.join(work, "sx-data"), "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sx.log"), "w"))
    procs.append(p)
    wait_ready(base + "/-/ready")
    time.sleep(30)
    idle, secs = measure(p.pid, args.idle)
    with open(cfg, "w") as f:
        f.write(head + f"slo_files: [{spec}]\n")
    t = time.time()
    c0 = cpu_seconds(p.pid)
    cycles = metric(base, "sextant_slo_cycles_total")
    get(base + "/-/reload", data=b"")
    # A new SLO's first cycle computes its alert windows' slices (3d) at once; the
    # rest of its period is backfilled in the background. Done when two cycles have
    # finished since the reload and no SLO is backfilling.
    while metric(base, "sextant_slo_cycles_total") < cycles + 2 or metric(base, "sextant_slo_backfilling") > 0:
        time.sleep(5)
    backfill = (time.time() - t, cpu_seconds(p.pid) - c0)
    time.sleep(2 * INTERVAL)
    cpu, secs2 = measure(p.pid, args.measure)
    own = metric(base, "sextant_slo_cycle_duration_seconds")
    status = base + "/api/sextant/v1/slos/bench-long"
    answer = json.loads(get(status))["data"]
    window = p50(lambda: get(status), args.runs)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    return ((idle / secs, (cpu - idle / secs * secs2) / (secs2 / INTERVAL), own, window,
             answer["windows"][-1]["error_ratio"]), backfill)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sextant")
    ap.add_argument("om_import")
    ap.add_argument("--slos", type=int, default=1000)
    ap.add_argument("--days", type=float, default=3)
    ap.add_argument("--idle", type=int, default=120, help="seconds of idle CPU measured")
    ap.add_argument("--measure", type=int, default=300, help="seconds of CPU measured with SLOs")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--only", choices=["prometheus", "sextant"], help="measure one server only")
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    args = ap.parse_args()
    os.sched_setaffinity(0, {1})

    work = tempfile.mkdtemp(prefix="bench-slo-")
    procs = []
    try:
        now = int(time.time())
        end = now - now % STEP
        start = end - int(args.days * 86400)
        long_start = end - LONG_DAYS * 86400
        counters = Counters(args.slos, long_start)
        om = os.path.join(work, "history.om")
        t = time.time()
        write_history(om, counters, start, end, long_start)
        spec = os.path.join(work, "slos.yml")
        write_spec(spec, args.slos)
        rules = os.path.join(work, "slo.rules.yml")
        subprocess.run([args.sextant, "slo", "generate", "-o", rules, spec], check=True)
        subprocess.run([args.promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                        om, os.path.join(work, "prom-data")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([args.om_import, om, os.path.join(work, "sx-data")], check=True, stdout=subprocess.DEVNULL)
        os.remove(om)
        print(f"data: {args.slos} SLOs x 2 series x {args.days}d at {STEP}s, bench-long 30d "
              f"(written and loaded into both in {time.time() - t:.0f}s)", flush=True)
        target = free_port()
        serve(counters, target)
        scrape = f"""  - job_name: bench
    scrape_interval: {STEP}s
    static_configs: [{{targets: ['127.0.0.1:{target}']}}]
"""
        results = {
            "prometheus": (float("nan"),) * 4 + (None,),
            "sextant": (float("nan"),) * 4 + (None,),
        }
        backfill = (float("nan"), float("nan"))
        if args.only != "sextant":
            results["prometheus"] = measure_prometheus(args, work, scrape, rules, procs)
        if args.only != "prometheus":
            results["sextant"], backfill = measure_sextant(args, work, scrape, spec, procs)

        pr, sx = results["prometheus"], results["sextant"]
        print(f"slo bench: {args.slos + 1} SLOs, {args.days}d of history, evaluation every {INTERVAL}s, "
              f"each server alone on one core")
        print(f"  idle CPU:            prometheus {pr[0]:.4f} s/s   sextant {sx[0]:.4f} s/s")
        print(f"  CPU per cycle:       prometheus {pr[1]:.3f} s     sextant {sx[1]:.3f} s     "
              f"ratio {sx[1] / pr[1]:.2f}x")
        print(f"  own figure:          prometheus {pr[2]:.3f} s (sum of rule group durations)   "
              f"sextant {sx[2]:.3f} s (cycle duration)")
        print(f"  sextant backfill:    {backfill[0]:.0f} s wall, {backfill[1]:.1f} CPU-s "
              f"({args.slos} SLOs over the 30d period, bench-long over 30d of data)")
        print(f"  30d window, p50:     prometheus {pr[3] * 1000:.1f} ms (period rule over the recorded 5m ratio, "
              f"= {pr[4]})   sextant {sx[3] * 1000:.1f} ms (whole SLO status from slices, period ratio "
              f"{sx[4]})   ratio {sx[3] / pr[3]:.2f}x")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
