#!/usr/bin/env python3
"""Actions benchmark: the demo's reaction times, the supervisor's cost per replica,
and the latency the workload proxy adds.

1. Reaction: `sextant demo --summary-json` (normal time scale, then `--fast`): seconds
   from the first SLO cycle whose short page window burned over the threshold to the
   scale-up taking effect (its new replicas ready), and from then to the short
   window burning under 1x again.
2. Supervisor overhead: `sextant serve` pinned to core 0 with one process workload
   of `sextant demo-service` replicas (health checks every 2s, metrics scraping off so
   only the supervisor is measured), 1 replica and then REPLICAS: Sextant's CPU
   (utime + stime from /proc) per second over MEASURE seconds after a settle, and its
   resident memory; the difference divided by the extra replicas.
3. Proxy latency: with 2 replicas, SAMPLES sequential `GET /healthz` on one kept-alive
   connection through the proxy and straight to a replica (client on core 1):
   p50 and p99 of each, and what the proxy adds.

Usage: bench_actions.py SEXTANT [--replicas 21] [--measure 60] [--samples 5000] [--skip-demo]
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def wait(fn, what, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def demo(args, fast):
    with tempfile.TemporaryDirectory() as d:
        summary = os.path.join(d, "summary.json")
        cmd = [args.sextant, "demo", "--listen", f"127.0.0.1:{free_port()}", "--summary-json", summary]
        if fast:
            cmd.append("--fast")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(summary) as f:
            return json.load(f)


def serve(args, work, replicas, proxy_port):
    cfg = os.path.join(work, f"sextant-{replicas}.yml")
    with open(cfg, "w") as f:
        f.write(f"""global: {{scrape_interval: 15s}}
workloads:
  - name: bench
    process:
      command: [{json.dumps(args.sextant)}, demo-service, --port, "{{port}}", --capacity, "100000"]
      replicas: {replicas}
      health: {{path: /healthz, interval: 2s}}
      metrics: {{enabled: false}}
      proxy: {{listen: "127.0.0.1:{proxy_port}"}}
""")
    port = free_port()
    p = subprocess.Popen(["taskset", "-c", "0", args.sextant, "serve", "--config", cfg,
                          "--data-dir", os.path.join(work, f"data-{replicas}"), "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"sx-{replicas}.log"), "w"))
    base = f"http://127.0.0.1:{port}"
    wait(lambda: get(base + "/api/sextant/v1/workloads/bench")["data"]["process"]["ready"] == replicas,
         f"{replicas} ready replicas", timeout=120)
    return p, base


def overhead(args, work, replicas):
    p, _ = serve(args, work, replicas, free_port())
    try:
        time.sleep(10)
        c0, t0 = cpu_seconds(p.pid), time.time()
        time.sleep(args.measure)
        cpu = (cpu_seconds(p.pid) - c0) / (time.time() - t0)
        return cpu, rss_mib(p.pid)
    finally:
        p.terminate()
        p.wait(timeout=60)


def latencies(host, port, path, n):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    out = []
    for i in range(n + 200):
        t = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        if i >= 200:  # warm-up
            out.append((time.perf_counter() - t) * 1000)
    conn.close()
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sextant")
    ap.add_argument("--replicas", type=int, default=21)
    ap.add_argument("--measure", type=int, default=60)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args()
    os.sched_setaffinity(0, {1})
    if not args.skip_demo:
        for fast in (False, True):
            tl = demo(args, fast)
            print(f"demo{' --fast' if fast else ''}: first cycle over the page threshold -> scale in effect "
                  f"{tl['detect_to_effect']:.1f}s; scale in effect -> burn under 1x {tl['effect_to_recovery']:.1f}s; "
                  f"scaled to {tl['scaled_to']}; whole demo {tl['total']:.0f}s", flush=True)
    with tempfile.TemporaryDirectory() as work:
        one = overhead(args, work, 1)
        many = overhead(args, work, args.replicas)
        extra = args.replicas - 1
        print(f"supervisor: 1 replica {one[0] * 1000:.2f} ms CPU/s, {one[1]:.1f} MiB; {args.replicas} replicas "
              f"{many[0] * 1000:.2f} ms CPU/s, {many[1]:.1f} MiB; per extra replica "
              f"{(many[0] - one[0]) * 1000 / extra:.3f} ms CPU/s, {(many[1] - one[1]) * 1024 / extra:.0f} KiB", flush=True)
        proxy_port = free_port()
        p, base = serve(args, work, 2, proxy_port)
        try:
            replica = get(base + "/api/sextant/v1/workloads/bench")["data"]["process"]["replicas"][0]["port"]
            direct = latencies("127.0.0.1", replica, "/healthz", args.samples)
            proxied = latencies("127.0.0.1", proxy_port, "/healthz", args.samples)
        finally:
            p.terminate()
            p.wait(timeout=60)
        print(f"proxy: GET /healthz x{args.samples}, one connection: direct p50 {direct[0]:.3f} ms p99 {direct[1]:.3f} ms; "
              f"through the proxy p50 {proxied[0]:.3f} ms p99 {proxied[1]:.3f} ms; added p50 "
              f"{proxied[0] - direct[0]:.3f} ms p99 {proxied[1] - direct[1]:.3f} ms", flush=True)


if __name__ == "__main__":
    main()
