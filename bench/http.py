#!/usr/bin/env python3
"""The HTTP API against SQL, in the same run on the same server (bench/run --only http).

For produce-1, produce-100 and cycle-1 at each client count: the SQL side is pgbench
with bench/querator/<scenario>.sql (-M prepared), the HTTP side wrk with
bench/http/<scenario>.lua (keep-alive, one connection per thread). Both start from a
fresh queue (cycle-1 prefilled), and items/s are counted on the server, as bench/run
does. Latency per call: p50/p99 of pgbench's per-transaction log (one call per
transaction in produce; cycle-1's two calls are halved) and wrk's own percentiles (one
call per request). Prints a JSON list of cells and a Markdown table (--markdown FILE).
"""
import argparse
import json
import os
import re
import subprocess
import tempfile

import benchlib

SCENARIOS = {"produce-1": {"cycle": False, "calls": 1}, "produce-100": {"cycle": False, "calls": 1},
             "cycle-1": {"cycle": True, "calls": 2}}


def queue_items(cur):
    """Items of queue bench (ready and leased), counted on the server."""
    cur.execute("SELECT sum(total + scheduled) FROM querator.queue_stats('bench')")
    return int(cur.fetchone()[0] or 0)


def fresh(cur, prefill):
    benchlib.fresh_queue(cur, "bench", lease_timeout="1 minute")
    for _ in range((prefill + 999) // 1000):
        cur.execute("SELECT querator.queue_produce('bench', array_fill(%s::jsonb, ARRAY[1000]))", (benchlib.PAYLOAD,))
    cur.execute("VACUUM ANALYZE")
    cur.execute("CHECKPOINT")


def percentile_ms(samples_us, p):
    xs = sorted(samples_us)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))] / 1000 if xs else float("nan")


def run_pgbench(args, scenario, clients, logdir):
    prefix = os.path.join(logdir, f"{scenario}-{clients}")
    out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-j", "2", "--max-tries=10", "-c", str(clients),
                          "-T", str(args.duration), "-f", os.path.join(args.scripts, "querator", scenario + ".sql"),
                          "-l", "--log-prefix", prefix, *args.pgbench_conn.split(), "bench"],
                         capture_output=True, text=True, check=True).stdout
    tx = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latencies = []
    for name in os.listdir(logdir):
        if name.startswith(os.path.basename(prefix) + "."):
            with open(os.path.join(logdir, name)) as log:
                latencies += [int(line.split()[2]) for line in log if line.strip()]
            os.unlink(os.path.join(logdir, name))
    per_call = SCENARIOS[scenario]["calls"]
    return tx / tps, [us / per_call for us in latencies]


def run_wrk(args, scenario, clients, seconds=None):
    env = dict(os.environ, QUERATOR_KEY=args.key)
    out = subprocess.run(["wrk", "-t", str(clients), "-c", str(clients), "-d", f"{seconds or args.duration}s", "--latency",
                          "-s", os.path.join(args.lua, scenario + ".lua"), args.url + "/v1/queue.produce"],
                         capture_output=True, text=True, check=True, env=env).stdout
    seconds = float(re.search(r"requests in ([\d.]+)s", out).group(1))
    percentiles = {}
    for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        percentiles[p] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return seconds, percentiles, int(errors.group(1)) if errors else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--pgbench-conn", required=True, help="pgbench's connection arguments, one string: '-h DIR -p PORT -U USER'")
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--scripts", required=True, help="the directory holding querator/*.sql")
    parser.add_argument("--lua", required=True, help="the directory holding the wrk scripts")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--markdown")
    args = parser.parse_args()
    cur = benchlib.connect(args.dsn).cursor()
    cells = []
    logdir = tempfile.mkdtemp(prefix="http-bench-")
    # The pool opens its connections as clients need them; a new backend's first calls are slow
    # (process start, caches), which is not what the cells measure: open them all first.
    fresh(cur, 0)
    run_wrk(args, "produce-1", max(args.clients), seconds=2)
    for scenario, shape in SCENARIOS.items():
        for clients in args.clients:
            cell = {"scenario": scenario, "clients": clients}
            for side in ("sql", "http"):
                fresh(cur, 40000 * (2 if clients > 1 else 1) * args.duration // 5 if shape["cycle"] else 0)
                before = queue_items(cur)
                if side == "sql":
                    seconds, latencies = run_pgbench(args, scenario, clients, logdir)
                    cell["sql_p50_ms"] = percentile_ms(latencies, 50)
                    cell["sql_p99_ms"] = percentile_ms(latencies, 99)
                else:
                    seconds, percentiles, refused = run_wrk(args, scenario, clients)
                    cell["http_p50_ms"] = percentiles.get("50")
                    cell["http_p99_ms"] = percentiles.get("99")
                    cell["http_non_2xx"] = refused
                after = queue_items(cur)
                cell[side + "_items_s"] = round(abs(after - before) / seconds, 1)
                if shape["cycle"] and after == 0:
                    cell[side + "_dry"] = True
            cell["ratio"] = round(cell["http_items_s"] / cell["sql_items_s"], 2) if cell["sql_items_s"] else None
            cells.append(cell)
            print(json.dumps(cell), flush=True)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write("| scenario | clients | SQL items/s | HTTP items/s | HTTP / SQL | latency per call p50 SQL / HTTP (added) |"
                      " p99 SQL / HTTP (added) | HTTP non-2xx |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
            for c in cells:
                out.write(f"| {c['scenario']} | {c['clients']} | {c['sql_items_s']:,.0f} | {c['http_items_s']:,.0f} |"
                          f" {c['ratio']:.2f}x | {c['sql_p50_ms']:.2f} / {c['http_p50_ms']:.2f} ms"
                          f" (+{c['http_p50_ms'] - c['sql_p50_ms']:.2f}) | {c['sql_p99_ms']:.2f} / {c['http_p99_ms']:.2f} ms"
                          f" (+{c['http_p99_ms'] - c['sql_p99_ms']:.2f}) | {c['http_non_2xx']} |\n")


if __name__ == "__main__":
    main()
