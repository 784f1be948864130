#!/usr/bin/env python3
"""Alert routing benchmark, Sextant (`sextant alertmanager`) against Alertmanager 0.25.

Each server runs alone on core 0 with the same configuration (one webhook receiver
on loopback, grouping by alertname, group_wait 1s); the load generator and the
webhook sink run on core 1.

1. Ingestion: `alert_load` posts batches of 64 alerts (what Prometheus sends per
   request) from 16 concurrent senders for SECONDS, cycling over 10,000 alerts in 100
   groups, each re-sent with a fresh endsAt: alerts accepted per second, p50/p99
   request latency. Sextant makes every accepted batch durable (fsync) before
   answering; Alertmanager keeps alerts in memory only.
2. Notification latency beyond group_wait: PROBES new groups, one alert each, posted
   one at a time; the time from the POST to the webhook's arrival, minus group_wait:
   p50 and p99.

Usage: bench_alerts.py SEXTANT ALERT_LOAD [--seconds 15] [--probes 50]
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
import urllib.request

GROUP_WAIT = 1.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    def __init__(self):
        self.arrivals = {}
        self.lock = threading.Lock()
        self.port = free_port()
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                t = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                name = body["groupLabels"].get("alertname", "")
                with sink.lock:
                    sink.arrivals.setdefault(name, t)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def config(sink):
    return (
        "route:\n  receiver: hook\n  group_by: [alertname]\n"
        f"  group_wait: {int(GROUP_WAIT * 1000)}ms\n  group_interval: 5m\n  repeat_interval: 4h\n"
        f"receivers:\n- name: hook\n  webhook_configs: [{{url: 'http://127.0.0.1:{sink.port}/'}}]\n"
    )


def wait_ready(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"not ready: {url}")


def post(url, alerts):
    req = urllib.request.Request(url, data=json.dumps(alerts).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def run(name, cmd, port, args, work, sink):
    p = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(work, f"{name}.log"), "w"))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/-/ready")
        load = subprocess.run(["taskset", "-c", "1", args.alert_load, "--url", base + "/api/v2/alerts",
                               "--seconds", str(args.seconds)], capture_output=True, text=True, check=True)
        figures = dict(kv.split("=") for kv in load.stdout.split())
        # Notification latency: new groups, one at a time, on a quiet server.
        time.sleep(2)
        extra = []
        for k in range(args.probes):
            group = f"Probe{name}{k}"
            t = time.perf_counter()
            post(base + "/api/v2/alerts", [{"labels": {"alertname": group, "probe": "1"}}])
            deadline = time.time() + 10
            while group not in sink.arrivals and time.time() < deadline:
                time.sleep(0.002)
            if group in sink.arrivals:
                extra.append((sink.arrivals[group] - t - GROUP_WAIT) * 1000)
        extra.sort()
        figures["probes"] = len(extra)
        figures["extra_p50_ms"] = statistics.median(extra) if extra else float("nan")
        figures["extra_p99_ms"] = extra[min(len(extra) - 1, int(len(extra) * 0.99))] if extra else float("nan")
        return figures
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sextant")
    ap.add_argument("alert_load")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--probes", type=int, default=50)
    args = ap.parse_args()
    os.sched_setaffinity(0, {1})
    work = tempfile.mkdtemp(prefix="bench-alerts-")
    try:
        sink = Sink()
        cfg = os.path.join(work, "am.yml")
        open(cfg, "w").write(config(sink))
        am_bin = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
        pa, ps = free_port(), free_port()
        am = run("am", [am_bin, f"--config.file={cfg}", f"--storage.path={work}/am",
                        f"--web.listen-address=127.0.0.1:{pa}", "--cluster.listen-address=",
                        "--log.level=warn"], pa, args, work, sink)
        sx = run("sx", [args.sextant, "alertmanager", f"--config.file={cfg}", f"--storage.path={work}/sx",
                        f"--web.listen-address=127.0.0.1:{ps}", "--log.level=warn"], ps, args, work, sink)
        print(f"alert bench: {args.seconds}s of batches of 64 alerts from 16 senders, each server alone on one core")
        print(f"  accepted alerts/s:   alertmanager {float(am['achieved']):.0f}   sextant {float(sx['achieved']):.0f}   "
              f"ratio {float(sx['achieved']) / float(am['achieved']):.2f}x")
        print(f"  request p50/p99 ms:  alertmanager {am['p50_ms']}/{am['p99_ms']}   sextant {sx['p50_ms']}/{sx['p99_ms']}")
        print(f"  errors:              alertmanager {am['errors']}   sextant {sx['errors']}")
        print(f"  beyond group_wait:   alertmanager p50 {am['extra_p50_ms']:.1f} ms p99 {am['extra_p99_ms']:.1f} ms   "
              f"sextant p50 {sx['extra_p50_ms']:.1f} ms p99 {sx['extra_p99_ms']:.1f} ms   ({sx['probes']} groups)")
    finally:
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
