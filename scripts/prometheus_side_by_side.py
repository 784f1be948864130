#!/usr/bin/env python3
"""PromQL and SLOs side by side with Prometheus 2.42, sharing one Prometheus.

Debian's `prometheus` scrapes a deterministic workload (counters, a counter that
resets, gauges with NaN and +Inf, classic histograms, a summary, series that come
and go) every second and remote-writes everything to Sextant, so both hold the
same samples, staleness markers included.

PromQL: every query of the list runs as a range query against both
`/api/v1/query_range` and the results are compared: the same label sets, the same
timestamps, values equal within a relative tolerance of 1e-5 (NaN equals NaN), and
the same errorType where both refuse. Prints one diff per mismatch and
`promql side-by-side: N/M queries match (P%)`.

SLOs: Prometheus also evaluates the rules `sextant slo generate` writes for the
specs in `tests/slo-side-by-side/slos.yml` (after `promtool check rules` passes
them), while Sextant evaluates the specs themselves. Each SLO's
`slo:sli_error:ratio_rate5m`, `...ratio_rate1h` and `slo:current_burn_rate:ratio` as
Prometheus recorded them are compared with Sextant's answer for the same SLO
evaluated at the same times (`/api/sextant/v1/slos/<id>?time=T`), within 1e-6
relative. (Sloth's burn-rate rule reads the recorded 5m ratio, so Prometheus' burn
rate lags its ratio by up to one evaluation; it is compared with Sextant's at the
time of the ratio it read.) Prometheus' recorded series are not remote-written, so Sextant's own
series stay its own. Prints `slo side-by-side: N/M points match`.

Exits 1 on any PromQL mismatch that `known-differences.txt` does not list, or any
SLO mismatch.

Usage: prometheus_side_by_side.py SEXTANT_BINARY [--minutes M] [--queries FILE] [--slos FILE]
"""

import argparse
import http.server
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "promql-side-by-side")
SLOS = os.path.join(HERE, "..", "tests", "slo-side-by-side", "slos.yml")
REL_TOL = 1e-5
SLO_REL_TOL = 1e-6
# Prometheus' recorded SLO series and the window each is compared with in Sextant's
# answer (None: the current burn rate of the summary).
SLO_SERIES = [
    ("slo:sli_error:ratio_rate5m", "5m"),
    ("slo:sli_error:ratio_rate1h", "1h"),
    ("slo:current_burn_rate:ratio", None),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Workload:
    """Metric values as pure functions of the scrape count, so every run is alike."""

    def __init__(self):
        self.scrapes = 0
        self.lock = threading.Lock()

    def render(self):
        with self.lock:
            n = self.scrapes
            self.scrapes += 1
        out = []

        def family(name, kind, help_text):
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("sbs_requests_total", "counter", "Requests served.")
        for si, service in enumerate(["auth", "cart", "search", "web"]):
            for ci, code in enumerate(["200", "404", "500"]):
                for mi, method in enumerate(["GET", "POST"]):
                    rate = (si + 1) * (3 - ci) * (mi + 1)
                    v = rate * n + (n * (si + ci)) // 7
                    out.append(f'sbs_requests_total{{service="{service}",code="{code}",method="{method}"}} {v}')

        family("sbs_restarts_counter_total", "counter", "A counter that resets every 90 scrapes.")
        for k in range(3):
            v = ((n + 30 * k) % 90) * (k + 2)
            out.append(f'sbs_restarts_counter_total{{worker="w{k}"}} {v}')

        family("sbs_temperature_celsius", "gauge", "A smooth gauge.")
        for k, room in enumerate(["lab", "hall", "roof"]):
            v = 20 + 5 * math.sin(n / 30 + k) + k * 0.25
            out.append(f'sbs_temperature_celsius{{room="{room}"}} {v!r}')

        family("sbs_queue_depth", "gauge", "An integer gauge with repeats.")
        for k in range(4):
            v = (n // (k + 2)) % (5 + k)
            out.append(f'sbs_queue_depth{{queue="q{k}"}} {v}')

        family("sbs_ratio", "gauge", "A gauge that is sometimes NaN or +Inf.")
        for k in range(2):
            if n % 7 == k:
                v = "NaN"
            elif n % 11 == k:
                v = "+Inf"
            else:
                v = repr(((n * (k + 3)) % 13) / 13)
            out.append(f'sbs_ratio{{part="p{k}"}} {v}')

        family("sbs_ephemeral", "gauge", "Series that come and go.")
        for k in range(4):
            if (n // 40 + k) % 3 != 0:
                out.append(f'sbs_ephemeral{{id="e{k}"}} {k * 10 + n % 5}')

        family("sbs_request_duration_seconds", "histogram", "Request latency.")
        bounds = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"]
        for si, service in enumerate(["auth", "cart", "web"]):
            total = 0
            cumulative = []
            for bi, _ in enumerate(bounds):
                total += ((n * (bi + 1 + si)) // (2 + si)) % 97 + n * (bi % 3)
                cumulative.append(total)
            for le, c in zip(bounds, cumulative):
                out.append(f'sbs_request_duration_seconds_bucket{{service="{service}",le="{le}"}} {c}')
            out.append(f'sbs_request_duration_seconds_sum{{service="{service}"}} {cumulative[-1] * 0.137 + si!r}')
            out.append(f'sbs_request_duration_seconds_count{{service="{service}"}} {cumulative[-1]}')

        family("sbs_rpc_latency_seconds", "summary", "RPC latency.")
        for q in ["0.5", "0.9", "0.99"]:
            out.append(f'sbs_rpc_latency_seconds{{quantile="{q}"}} {float(q) * (1 + (n % 10) / 10)!r}')
        out.append(f"sbs_rpc_latency_seconds_sum {n * 0.5!r}")
        out.append(f"sbs_rpc_latency_seconds_count {n}")

        family("sbs_build_info", "gauge", "Build information.")
        out.append('sbs_build_info{version="1.2.3",instance_name="host-1:9100",branch="main"} 1')
        out.append('sbs_build_info{version="1.3.0-rc.1",instance_name="host-2:9100",branch="next"} 1')
        return ("\n".join(out) + "\n").encode()


def serve_workload(workload, port):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = workload.render()
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


def wait_ready(url, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not become ready at {url}")


def query_range(base, q, start, end, step):
    data = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step}).encode()
    req = urllib.request.Request(base + "/api/v1/query_range", data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def to_float(s):
    return float(s)  # Python reads "NaN", "+Inf", "-Inf" as Prometheus writes them


def close(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


def compare(p, s):
    """None when the answers agree, else a description of the first differences."""
    if p.get("status") != s.get("status"):
        return f"prometheus {p.get('status')} {p.get('error', '')!r}; sextant {s.get('status')} {s.get('error', '')!r}"
    if p["status"] != "success":
        if p.get("errorType") != s.get("errorType"):
            return f"errorType prometheus {p.get('errorType')} vs sextant {s.get('errorType')}"
        return None
    key = lambda r: json.dumps(r["metric"], sort_keys=True)
    ps = {key(r): r["values"] for r in p["data"]["result"]}
    ss = {key(r): r["values"] for r in s["data"]["result"]}
    problems = []
    for k in sorted(set(ps) - set(ss)):
        problems.append(f"only in prometheus: {k} ({len(ps[k])} points)")
    for k in sorted(set(ss) - set(ps)):
        problems.append(f"only in sextant: {k} ({len(ss[k])} points)")
    for k in sorted(set(ps) & set(ss)):
        pv = {t: v for t, v in ps[k]}
        sv = {t: v for t, v in ss[k]}
        if set(pv) != set(sv):
            missing = sorted(set(pv) - set(sv))[:3]
            extra = sorted(set(sv) - set(pv))[:3]
            problems.append(f"{k}: timestamps differ; sextant lacks {missing}, has extra {extra}")
            continue
        for t in sorted(pv):
            if not close(to_float(pv[t]), to_float(sv[t])):
                problems.append(f"{k} @{t}: prometheus {pv[t]} sextant {sv[t]}")
                break
    return "\n      ".join(problems[:6]) if problems else None


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def instant(base, q, t):
    return get_json(base + "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": t}))


def sextant_slo_value(status, window):
    if window is None:
        return status.get("current_burn_rate")
    for w in status["windows"]:
        if w["window"] == window:
            return w["error_ratio"]
    raise KeyError(f"no window {window} in {status['id']}")


def late_ratio_explains(prom, exprs, sid, t, recorded_ratio, recorded_burn, sextant_burn):
    """Whether a burn-rate mismatch is inherited from a late recorded 5m ratio.

    Sloth's burn rate is the recorded ratio over the error budget, so re-evaluating the
    burn-rate rule only reads the same recorded ratio again. When the ratio recorded at
    T was itself computed before a scrape was committed (the race `compare_slos` allows
    for), the burn rate carries that error. Scaled by the ratio's expression evaluated
    again at T over the data Prometheus holds now, it must equal Sextant's."""
    if recorded_ratio is None or recorded_ratio == 0 or math.isnan(recorded_ratio):
        return False
    again = instant(prom, exprs[("slo:sli_error:ratio_rate5m", sid)], f"{t:.3f}")["data"]["result"]
    if not again:
        return False
    ratio_now = to_float(again[0]["value"][1])
    if abs(ratio_now - recorded_ratio) <= SLO_REL_TOL * max(abs(ratio_now), abs(recorded_ratio)):
        return False  # the ratio was not late: the mismatch is real
    expected = recorded_burn * ratio_now / recorded_ratio
    return abs(expected - sextant_burn) <= SLO_REL_TOL * max(abs(expected), abs(sextant_burn))


def compare_slos(prom, sx, start, end, every):
    """Prometheus' recorded SLO series against Sextant's evaluation at the same times.

    Returns (points compared, mismatches as text). A point where Prometheus recorded
    NaN (Sloth's 0/0) matches Sextant's null. When a point differs, Prometheus' rule
    expression is evaluated again at the same time over the data it holds now: if that
    agrees with Sextant, Prometheus' rule ran before a scrape with an earlier timestamp
    was committed (a race of its own); that is counted and reported, not a mismatch.
    A burn rate computed from such a late ratio is counted the same way
    (`late_ratio_explains`).
    """
    rules = get_json(prom + "/api/v1/rules")["data"]["groups"]
    exprs = {}
    for g in rules:
        for r in g["rules"]:
            if r["type"] == "recording":
                exprs[(r["name"], r["labels"].get("sloth_id"))] = r["query"]
    ids = sorted({sid for (_, sid) in exprs if sid})
    cache = {}
    compared, late, problems = 0, 0, []
    for sid in ids:
        # Sloth's burn-rate rule (in its meta group) divides the *recorded* 5m ratio,
        # so Prometheus' current burn rate at T is the ratio its SLI group recorded at
        # the last evaluation before T; Sextant's is computed at T itself. Like is
        # compared with like by asking Sextant for the time of that recorded ratio.
        ratio_times, ratio_at = [], {}
        for metric, window in SLO_SERIES:
            sel = f'{metric}{{sloth_id="{sid}"}}[{end - start + 60}s]'
            res = instant(prom, sel, end)["data"]["result"]
            if len(res) != 1:
                problems.append(f"{sid} {metric}: prometheus recorded {len(res)} series")
                continue
            all_points = [(float(t), v) for t, v in res[0]["values"]]
            if metric == "slo:sli_error:ratio_rate5m":
                ratio_times = [t for t, _ in all_points]
                ratio_at = {t: to_float(v) for t, v in all_points}
            points = [(t, v) for t, v in all_points if start <= t <= end]
            if not points:
                problems.append(f"{sid} {metric}: no points recorded by prometheus")
                continue
            for t_rec, pv in points[::every]:
                t = t_rec
                if window is None:
                    inputs = [x for x in ratio_times if x <= t_rec]
                    if not inputs:
                        continue
                    t = inputs[-1]
                key = (sid, t)
                if key not in cache:
                    a = get_json(sx + f"/api/sextant/v1/slos/{sid}?time={t:.3f}")
                    if a.get("status") != "success":
                        problems.append(f"{sid} @{t}: sextant {a.get('error')}")
                        cache[key] = None
                        continue
                    cache[key] = a["data"]
                if cache[key] is None:
                    continue
                compared += 1
                sv = sextant_slo_value(cache[key], window)
                p = to_float(pv)
                if sv is None and math.isnan(p):
                    continue
                if sv is not None and abs(p - sv) <= SLO_REL_TOL * max(abs(p), abs(sv)):
                    continue
                again = instant(prom, exprs[(metric, sid)], f"{t_rec:.3f}")["data"]["result"]
                now = to_float(again[0]["value"][1]) if again else None
                if now is not None and sv is not None and abs(now - sv) <= SLO_REL_TOL * max(abs(now), abs(sv)):
                    late += 1
                    continue
                if window is None and sv is not None and late_ratio_explains(prom, exprs, sid, t, ratio_at.get(t), p, sv):
                    late += 1
                    continue
                problems.append(f"{sid} {metric} @{t_rec:.3f}: prometheus recorded {pv} (re-evaluated: {now}), "
                                f"sextant {sv} (at {t:.3f})")
    if late:
        print(f"slo side-by-side: {late} points where Prometheus' rule ran before its scrape was committed "
              "(its expression evaluated again agrees with Sextant)")
    return compared, problems


def load_queries(path, at_time):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            out.append(line.replace("{T}", str(at_time)))
    return out


def load_known(path):
    known = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("#"):
                    continue
                q, _, reason = line.partition("\t")
                known[q.strip()] = reason.strip()
    return known


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sextant")
    ap.add_argument("--minutes", type=float, default=6.5, help="how long Prometheus scrapes before the queries")
    ap.add_argument("--queries", default=os.path.join(DATA, "queries.promql"))
    ap.add_argument("--slos", default=SLOS, help="SLO specs both evaluate")
    ap.add_argument("--slo-every", type=int, default=5, help="compare every Nth recorded SLO point")
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="sbs-")
    procs = []

    def stop():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    try:
        wl_port, sx_port, prom_port = free_port(), free_port(), free_port()
        serve_workload(Workload(), wl_port)
        slo_rules = os.path.join(work, "slo.rules.yml")
        subprocess.run([args.sextant, "slo", "generate", "-o", slo_rules, args.slos], check=True)
        subprocess.run([args.promtool, "check", "rules", slo_rules], check=True, stdout=subprocess.DEVNULL)
        sx_cfg = os.path.join(work, "sextant.yml")
        with open(sx_cfg, "w") as f:
            # The same evaluation interval as Prometheus: it is the default subquery step.
            f.write("global:\n  evaluation_interval: 1s\nscrape_configs: []\nstorage:\n  retention: 0s\n"
                    f"slo_files: [{json.dumps(os.path.abspath(args.slos))}]\n")
        procs.append(subprocess.Popen(
            [args.sextant, "serve", "--config", sx_cfg, "--data-dir", os.path.join(work, "sx-data"),
             "--listen", f"127.0.0.1:{sx_port}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "sextant.log"), "w")))
        sx = f"http://127.0.0.1:{sx_port}"
        wait_ready(sx + "/-/ready", "sextant")
        prom_cfg = os.path.join(work, "prometheus.yml")
        with open(prom_cfg, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [{slo_rules}]
scrape_configs:
  - job_name: workload
    static_configs: [{{targets: ['127.0.0.1:{wl_port}']}}]
remote_write:
  - url: {sx}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 1s}}
    # Sextant records its own SLO series under the same names.
    write_relabel_configs:
      - source_labels: [__name__]
        regex: 'slo:.*|sloth_slo_info|ALERTS|ALERTS_FOR_STATE'
        action: drop
""")
        procs.append(subprocess.Popen(
            [args.prometheus, f"--config.file={prom_cfg}", f"--web.listen-address=127.0.0.1:{prom_port}",
             f"--storage.tsdb.path={os.path.join(work, 'prom-data')}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prometheus.log"), "w")))
        prom = f"http://127.0.0.1:{prom_port}"
        wait_ready(prom + "/-/ready", "prometheus")

        started = time.time()
        seconds = args.minutes * 60
        print(f"scraping for {args.minutes} minutes (data in {work})", flush=True)
        time.sleep(seconds)
        # Query a range that ended a minute ago: remote_write has delivered everything up
        # to 20s ago, and the queries' negative offsets look at most 30s ahead.
        end = int(time.time()) - 60
        start = max(int(started) + 30, end - 300)
        step = 5
        time.sleep(5)
        queries = load_queries(args.queries, (start + end) // 2)
        known = load_known(os.path.join(DATA, "known-differences.txt"))
        matched, unexpected = 0, 0
        for q in queries:
            p = query_range(prom, q, start, end, step)
            s = query_range(sx, q, start, end, step)
            diff = compare(p, s)
            if diff is None:
                matched += 1
                if q in known:
                    print(f"NOW MATCHES (remove from known-differences.txt): {q}")
                continue
            tag = "KNOWN" if q in known else "MISMATCH"
            if q not in known:
                unexpected += 1
            print(f"{tag}: {q}\n      {diff}" + (f"\n      reason: {known[q]}" if q in known else ""))
        pct = 100.0 * matched / len(queries)
        print(f"promql side-by-side: {matched}/{len(queries)} queries match ({pct:.1f}%), "
              f"range {end - start}s at {step}s steps")
        compared, problems = compare_slos(prom, sx, start, end, args.slo_every)
        for p in problems:
            print(f"SLO MISMATCH: {p}")
        print(f"slo side-by-side: {compared - len(problems)}/{compared} points match "
              f"(5m and 1h error ratios, current burn rate; every {args.slo_every}th recorded point "
              f"over {end - start}s)")
        return 1 if unexpected or problems or compared == 0 else 0
    finally:
        stop()
        if os.environ.get("SBS_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
