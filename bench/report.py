#!/usr/bin/env python3
"""Turns what bench/run measured into the Markdown report and the JSON rows.

Inputs in --dir: results.tsv (tab-separated records written by bench/run),
latency.json (bench/latency.py), webhook.json (bench/webhook.py), many_queues.json
(bench/many_queues.py), meta.tsv
(machine, versions, settings).
"""
import argparse
import json
import os
import statistics
from collections import defaultdict

THROUGHPUT = ["produce-1", "produce-100", "cycle-1", "cycle-100", "cycle-1-tx", "cycle-100-tx",
              "cycle-1-loop", "cycle-100-loop"]
# producers and consumers together at full speed, sampled per window
LOAD = ["steady", "held-xmin", "held-xmin-drain"]


def load(workdir):
    tput = defaultdict(list)      # (scenario, side, clients) -> [(items/s, calls/s)]
    windows = defaultdict(list)   # (scenario, side) -> [(items/s, depth)]
    storage, load_runs = {}, {}
    worker = defaultdict(list)    # (scenario, clients) -> [(items, cpu seconds or None, wall seconds)]
    wal = defaultdict(list)       # (scenario, side, clients) -> [(items, records, full-page images, bytes)]
    with open(os.path.join(workdir, "results.tsv")) as f:
        for line in f:
            kind, *r = line.rstrip("\n").split("\t")
            if kind == "tput":
                tput[(r[0], r[1], int(r[2]))].append((float(r[4]), float(r[5]), float(r[6]), int(r[7]), int(r[8]), r[9] if len(r) > 9 else ""))
            elif kind == "window":
                windows[(r[0], r[1])].append((float(r[3]), int(r[4])))
            elif kind == "storage":
                # bytes, dead tuples, items at the start; the same at the end; items consumed;
                # the held horizon's age in transactions (held-*); an error
                storage[(r[0], r[1])] = [int(x) for x in r[2:9]] + [int(r[9]) if r[9] else None,
                                                                    r[10] if len(r) > 10 else ""]
            elif kind == "load":
                load_runs[r[0]] = tuple(int(x) for x in r[1:5])  # producers, consumers, window s, preloaded
            elif kind == "worker":
                worker[(r[0], int(r[1]))].append((int(r[3]), float(r[4]) if r[4] else None, float(r[5])))
            elif kind == "wal":
                wal[(r[0], r[1], int(r[2]))].append(tuple(int(x) for x in r[4:8]))
    latency = {}  # bench/run --only may leave out either script
    for name in ("latency.json", "webhook.json", "many_queues.json"):
        if os.path.exists(os.path.join(workdir, name)):
            with open(os.path.join(workdir, name)) as f:
                latency.update(json.load(f))
    with open(os.path.join(workdir, "meta.tsv")) as f:
        meta = [line.rstrip("\n").split("\t", 1) for line in f]
    return tput, windows, storage, load_runs, worker, wal, latency, meta


def median(runs, i=0):
    return statistics.median(r[i] for r in runs) if runs else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def window_noise(rates):
    """The noise of one window's figure as a fraction of the mean: the typical distance of a
    window from the straight line through its two neighbours, so a steady trend (a queue that
    slows down) is not counted as noise. For independent noise of deviation s the second
    difference has deviation s * sqrt(6), and its median absolute value is 0.6745 times that.
    None with fewer than three windows."""
    if len(rates) < 3 or not statistics.mean(rates):
        return None
    second = [abs(a - 2 * b + c) for a, b, c in zip(rates, rates[1:], rates[2:])]
    return round(statistics.median(second) / (0.6745 * 6 ** 0.5) / statistics.mean(rates), 3)


def worker_cpu(runs):
    """The worker's CPU over a scenario's runs (median of the repetitions): ms per 1,000
    items and % of one core. None where the worker was restarted during the run."""
    per_item = [cpu * 1e6 / items for items, cpu, _ in runs if cpu is not None and items]
    pct = [100 * cpu / wall for _, cpu, wall in runs if cpu is not None and wall]
    return {"worker_cpu_ms_per_1000_items": round(statistics.median(per_item), 1) if per_item else None,
            "worker_cpu_pct_of_core": round(statistics.median(pct), 2) if pct else None}


def wal_per_item(runs, prefix=""):
    """The cluster's WAL per item moved (pg_stat_wal differences around each run; median of
    the repetitions): records, full-page images and bytes."""
    out = {}
    for i, name in ((1, "records"), (2, "fpi"), (3, "bytes")):
        per_item = [r[i] / r[0] for r in runs if r[0]]
        out[f"{prefix}wal_{name}_per_item"] = round(statistics.median(per_item), 2) if per_item else None
    return out


def build_rows(tput, windows, storage, load_runs, worker, wal, latency):
    clients = sorted({c for (_, _, c) in tput})
    rows = []
    ceiling = {c: median(tput[("ceiling", "ceiling", c)]) for c in clients}
    for c in clients:
        rows.append({"scenario": "ceiling", "clients": c, "items_per_s": ceiling[c],
                     "ratio_to_handrolled": None, "unit": "SELECT 1 transactions/s"})
    for s in THROUGHPUT:
        for c in clients:
            q, h = tput[(s, "querator", c)], tput[(s, "handrolled", c)]
            if not q and not h:
                continue  # not run (bench/run --only)
            rows.append({
                "scenario": s, "clients": c,
                "items_per_s": median(q), "handrolled_items_per_s": median(h),
                "ratio_to_handrolled": ratio(median(q), median(h)),
                # round trips per second used, as a fraction of SELECT 1's
                "ceiling_fraction": ratio(median(q, 1), ceiling[c]),
                "handrolled_ceiling_fraction": ratio(median(h, 1), ceiling[c]),
                # items a call returned / items it asked for (< 1: short or empty leases)
                "batch_fill": median(q, 2), "handrolled_batch_fill": median(h, 2),
                # transactions retried after a deadlock (all repetitions)
                "deadlock_retries": sum(r[3] for r in q),
                "handrolled_deadlock_retries": sum(r[3] for r in h),
                # a run that emptied its prefilled queue: its figure is a lower bound
                "ran_dry": any(r[4] for r in q), "handrolled_ran_dry": any(r[4] for r in h),
                # pgbench errors (aborted clients, failures after retries): the figure is suspect
                "errors": [r[5] for r in q if r[5]], "handrolled_errors": [r[5] for r in h if r[5]],
                "querator_runs": [r[0] for r in q], "handrolled_runs": [r[0] for r in h],
                **worker_cpu(worker[(s, c)]),
                **wal_per_item(wal[(s, "querator", c)]),
                **wal_per_item(wal[(s, "handrolled", c)], "handrolled_"),
            })
    for s in LOAD:
        if s not in load_runs:
            continue
        producers, consumers, window, preloaded = load_runs[s]
        row = {"scenario": s, "clients": consumers, "producers": producers, "window_s": window,
               "preloaded_items": preloaded, **worker_cpu(worker[(s, consumers)])}
        for side in ("querator", "handrolled"):
            w = windows[(s, side)]
            prefix = "" if side == "querator" else "handrolled_"
            rates = [x[0] for x in w]
            row[prefix + "items_per_s"] = round(statistics.mean(rates), 1) if rates else None
            row[prefix + "last_window_ratio"] = ratio(rates[-1], rates[0]) if rates else None
            row[prefix + "window_noise"] = window_noise(rates)
            row[prefix + "windows_items_per_s"] = rates
            row[prefix + "depth_per_window"] = [x[1] for x in w]
            b0, d0, n0, b1, d1, n1, consumed, xmin_age, err = storage.get((s, side), [None] * 8 + [""])
            row[prefix + "errors"] = [err] if err else []
            row[side + "_bytes_start"], row[side + "_bytes_end"] = b0, b1
            row[side + "_bytes_growth"] = b1 - b0 if b0 is not None else None
            row[side + "_bytes_growth_per_item"] = ratio(row[side + "_bytes_growth"], consumed)
            row[side + "_dead_tuples_start"], row[side + "_dead_tuples_end"] = d0, d1
            row[side + "_items_start"], row[side + "_items_end"] = n0, n1  # the live backlog
            row[side + "_items_consumed"] = consumed
            row[side + "_held_xmin_age"] = xmin_age
            # the live backlog's size: the items left at the end at the bytes an item took in
            # the preloaded, vacuumed queue at the start (same side); what is above it is dead
            backlog_bytes = n1 * b0 / n0 if preloaded and b0 is not None and n0 else None
            row[side + "_end_bytes_to_backlog"] = ratio(b1, backlog_bytes)
            row[side + "_dead_bytes_per_item"] = (ratio(b1 - backlog_bytes, consumed)
                                                  if backlog_bytes is not None else None)
        row["ratio_to_handrolled"] = ratio(row["items_per_s"], row["handrolled_items_per_s"])
        row["storage_growth_ratio_to_handrolled"] = ratio(row["querator_bytes_growth"],
                                                          row["handrolled_bytes_growth"])
        row["storage_growth_per_item_ratio_to_handrolled"] = ratio(row["querator_bytes_growth_per_item"],
                                                                   row["handrolled_bytes_growth_per_item"])
        rows.append(row)
    latency_row = lambda s, c, handrolled, figures: {
        "scenario": s, "clients": c, "items_per_s": None, "ratio_to_handrolled": None,
        "handrolled": handrolled, **figures}
    if "wake" in latency:
        rows += [
            latency_row("wake-latency", latency["wake"]["consumers"], "n/a (no wait)", latency["wake"]),
            latency_row("burst-wake", latency["burst"]["consumers"], "n/a (no wait)", latency["burst"]),
            latency_row("waiters-idle-cpu", latency["waiters_idle"]["consumers"], "n/a (no wait)",
                        latency["waiters_idle"]),
            latency_row("expiry-precision", 1, "n/a (vt polling)", latency["expiry"]),
            latency_row("schedule-precision", 1, "n/a (vt polling)", latency["schedule"]),
        ]
    for w in latency.get("webhook", []):
        rows.append({"scenario": "webhook", "clients": w["concurrency"], "items_per_s": w["deliveries_per_s"],
                     "ratio_to_handrolled": None, "handrolled": "n/a (no webhooks)", **w})
    if "many_queues" in latency:
        rows.append({"scenario": "many-queues", "clients": 0, "items_per_s": None, "ratio_to_handrolled": None,
                     **latency["many_queues"]})
    if worker[("idle", 0)]:
        rows.append({"scenario": "worker-idle", "clients": 0, "items_per_s": None, "ratio_to_handrolled": None,
                     "seconds": worker[("idle", 0)][0][2], **worker_cpu(worker[("idle", 0)])})
    return rows


def fmt(x, suffix=""):
    if x is None:
        return "n/a"
    return f"{x:,.0f}{suffix}" if abs(x) >= 100 else f"{x:.2f}{suffix}"


def worker_cell(r):
    """The worker's CPU in a row of the main table: ms per 1,000 items (% of a core)."""
    ms, pct = r.get("worker_cpu_ms_per_1000_items"), r.get("worker_cpu_pct_of_core")
    if pct is None:
        return ""
    return f"{fmt(ms)} ({fmt(pct)}%)" if ms is not None else f"({fmt(pct)}%)"


def wal_cell(r):
    """WAL per item in a row of the main table: records, full-page images, bytes (querator /
    hand-rolled)."""
    side = lambda p: (f"{fmt(r[p + 'wal_records_per_item'])}, {fmt(r[p + 'wal_fpi_per_item'])}, "
                      f"{fmt(r[p + 'wal_bytes_per_item'])}"
                      if r.get(p + "wal_records_per_item") is not None else "n/a")
    return f"{side('')} / {side('handrolled_')}"


def last_first(r, p):
    """last / first window of a load scenario's side, with the noise of that ratio: a window's
    relative noise (window_noise) times sqrt(2), as two windows make it."""
    lw, noise = r[p + "last_window_ratio"], r[p + "window_noise"]
    if lw is None:
        return "n/a"
    return f"{lw:.2f}" + (f" ± {lw * noise * 2 ** 0.5:.2f}" if noise is not None else "")


def latencies(r):
    return f"p50 {fmt(r['p50_ms'])} ms, p99 {fmt(r['p99_ms'])} ms"


def mib(b):
    return f"{b / 1048576:.1f} MiB" if b is not None else "n/a"


def targets(rows):
    """bench.md's targets, each with the measured figure and whether it is met."""
    by = {(r["scenario"], r["clients"]): r for r in rows}
    out = []

    def check(name, value, ok, shown):
        out.append((name, shown, "met" if ok else "**not met**") if value is not None
                   else (name, "n/a", "n/a"))

    top = max(c for (s, c) in by if s == "ceiling")
    for s, need, source in (("cycle-1", 2, ""), ("cycle-100", 2, ""), ("produce-1", 1, ""),
                            ("produce-100", 1, ""), ("cycle-1-tx", 1.2, " (issue 13)")):
        if (s, top) not in by or by[(s, top)]["items_per_s"] is None:
            continue  # not run (--only)
        r = by[(s, top)]["ratio_to_handrolled"]
        check(f"{s} at {top} clients >= {need}x hand-rolled{source}", r, r is not None and r >= need,
              f"{r:.2f}x" if r is not None else "")
    # issue 13: the one-call loop against the hand-rolled lease-then-delete transaction and
    # against the hand-rolled single statement (its own ratio)
    loop, tx = by.get(("cycle-1-loop", top)), by.get(("cycle-1-tx", top))
    if loop and loop["items_per_s"] is not None:
        r = ratio(loop["items_per_s"], tx["handrolled_items_per_s"]) if tx else None
        check(f"cycle-1-loop at {top} clients >= 2x the hand-rolled lease-then-delete transaction (issue 13)", r,
              r is not None and r >= 2, f"{r:.2f}x" if r is not None else "")
        r = loop["ratio_to_handrolled"]
        check(f"cycle-1-loop at {top} clients >= 1x the hand-rolled single statement (issue 13)", r,
              r is not None and r >= 1, f"{r:.2f}x" if r is not None else "")
    for s in LOAD:
        r = [x for x in rows if x["scenario"] == s]
        if not r:
            continue
        r = r[0]
        lw = r["last_window_ratio"]
        check(f"{s}: last window >= 0.9 x first", lw, lw is not None and lw >= 0.9,
              f"{last_first(r, '')} (hand-rolled {last_first(r, 'handrolled_')})")
    held = [x for x in rows if x["scenario"] == "held-xmin"]
    if held:
        g = held[0]["storage_growth_per_item_ratio_to_handrolled"]
        check("held-xmin: storage growth per item consumed a small fraction (< 0.25) of hand-rolled's", g,
              g is not None and g < 0.25, fmt(g))
    drain = [x for x in rows if x["scenario"] == "held-xmin-drain"]
    if drain:
        e = drain[0]["querator_end_bytes_to_backlog"]
        d = drain[0]
        check("held-xmin-drain: storage at the end < 2x the live backlog's size (issue 14)", e,
              e is not None and e < 2, f"{fmt(e, 'x')}, dead {fmt(d['querator_dead_bytes_per_item'], ' B')} per item "
              f"(hand-rolled {fmt(d['handrolled_end_bytes_to_backlog'], 'x')}, "
              f"{fmt(d['handrolled_dead_bytes_per_item'], ' B')})")
    for s, limit in (("wake-latency", 5), ("expiry-precision", 100)):
        r = [x for x in rows if x["scenario"] == s]
        if not r:
            continue
        r = r[0]
        p99 = r["p99_ms"]
        check(f"{s} p99 < {limit} ms", p99, p99 is not None and p99 < limit,
              f"{p99:.2f} ms" if p99 is not None else "")
    many = [x for x in rows if x["scenario"] == "many-queues"]
    if many:
        m = many[0]
        n, few, lots = m["queues"], m["load_few"], m["load_many"]
        p99 = lots["expiry"]["p99_ms"]
        check(f"many-queues: expiry lateness p99 < 100 ms with {n:,} queues (issue 17)", p99,
              p99 is not None and p99 < 100 and lots["expiry"]["misses"] == 0,
              f"{fmt(p99)} ms, {lots['expiry']['misses']} misses")
        a, b = few["worker_cpu_pct_of_core"], lots["worker_cpu_pct_of_core"]
        r = ratio(b, a)
        check(f"many-queues: worker CPU with {n:,} queues within 2x of {few['queues_present']}", r,
              r is not None and r <= 2, f"{fmt(b)}% / {fmt(a)}% = {fmt(r, 'x')}")
        first, last = halves([w["cpu_pct_of_core"] for w in lots["worker_windows"]])
        check("many-queues: worker CPU flat (mean of the last half of the windows <= 1.5x the first half's + 1 point)",
              last, last is not None and last <= 1.5 * first + 1, f"{fmt(first)}% -> {fmt(last)}%")
        rss_few, rss = few["worker_windows"][-1]["rss_anon_mb"], [w["rss_anon_mb"] for w in lots["worker_windows"]]
        check(f"many-queues: worker RssAnon flat (last <= 1.2x first) and within 2x of {few['queues_present']} queues",
              rss[-1], rss[-1] <= 1.2 * rss[0] and rss[-1] <= 2 * rss_few,
              f"{fmt(rss[0])} -> {fmt(rss[-1])} MB ({fmt(rss_few)} MB)")
        mem, plans = m["memory"]["context_mb"], m["memory"].get("plans_mb")
        bound = m["memory"]["max_cached_plans"] * 0.1  # README: about 100 KB a plan
        check(f"many-queues: context memory of a connection that used {m['memory']['queues_used']:,} queues < 64 MB, "
              f"or its plans within the documented bound (max_cached_plans x 100 KB = {fmt(bound)} MB; the "
              "relation cache comes on top)", mem, mem < 64 or (plans is not None and plans <= bound),
              f"{fmt(mem)} MB" + (f", plans {fmt(plans)} MB" if plans is not None else ""))
        r = m["cycle"]["ratio"]
        check(f"many-queues: cycle-1 items/s with {n:,} queues >= 0.9x with 1", r, r >= 0.9, fmt(r, "x"))
    return out


def halves(xs):
    """Means of the first and the last half of a list (None values left out)."""
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return None, None
    h = len(xs) // 2
    return statistics.mean(xs[:h]), statistics.mean(xs[-h:])


def markdown(rows, meta):
    md = [f"# querator benchmark, {dict(meta).get('date', '')}", "", "| | |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in meta]
    md += ["", "Items per second (median of the repetitions). *ratio* = querator / hand-rolled; "
           "*ceiling* = round trips per second used (statements: 2 per cycle, 4 per -tx cycle with its "
           "`BEGIN` and `COMMIT`, 1 per -loop call) / `SELECT 1` "
           "transactions per second at the same client count; *worker CPU* = the querator "
           "worker's CPU during the querator run, ms per 1,000 items (% of one core); *WAL per item* = "
           "the cluster's WAL records, full-page images and bytes (`pg_stat_wal`) over the run / items "
           "moved (the run starts right after a `CHECKPOINT`: a page's first change writes a full-page "
           "image of about 8 KB). "
           "*-tx*: lease and complete in one transaction; *-loop*: one statement completes the "
           "previous batch and leases the next (querator's `queue_complete_and_lease`, the hand-rolled "
           "queue's best: a CTE that deletes and leases).", "",
           "| scenario | clients | querator items/s | hand-rolled items/s | ratio "
           "| ceiling (querator / hand-rolled) | worker CPU | WAL per item: records, FPI, bytes (querator / hand-rolled) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    flag = lambda errs: " (!)" if errs else ""
    for r in rows:
        s, c = r["scenario"], r["clients"]
        if s == "ceiling":
            md.append(f"| ceiling (`SELECT 1` tx/s) | {c} | {fmt(r['items_per_s'])} | | | 1.00 | | |")
        elif s in THROUGHPUT:
            querator = f"{fmt(r['items_per_s'])}{flag(r['errors'])}"
            md.append(f"| {s} | {c} | {querator} "
                      f"| {fmt(r['handrolled_items_per_s'])}{flag(r['handrolled_errors'])} "
                      f"| {fmt(r['ratio_to_handrolled'], 'x')} | {fmt(r['ceiling_fraction'])} / "
                      f"{fmt(r['handrolled_ceiling_fraction'])} | {worker_cell(r)} | {wal_cell(r)} |")
        elif s in LOAD:
            preloaded = f", {r['preloaded_items']:,} preloaded" if r["preloaded_items"] else ""
            md.append(f"| {s} ({r['producers']} producers, full speed{preloaded}) | {c} "
                      f"| {fmt(r['items_per_s'])}{flag(r['errors'])} "
                      f"| {fmt(r['handrolled_items_per_s'])}{flag(r['handrolled_errors'])} "
                      f"| {fmt(r['ratio_to_handrolled'], 'x')} | | {worker_cell(r)} | |")
        elif s == "burst-wake":
            md.append(f"| {s} (one produce of {c} items) | {c} | {latencies(r)}, max {fmt(r['max_ms'])} ms; "
                      f"{r['got_one_item']} of {c} waiters got one item | {r['handrolled']} | | | | |")
        elif s == "wake-latency":
            md.append(f"| {s} (from before the producer's `COMMIT`) | {c} | {latencies(r)}, max "
                      f"{fmt(r['max_ms'])} ms ({r['samples']} items; the `COMMIT` alone p50 "
                      f"{fmt(r['producer_commit_p50_ms'])} ms) | {r['handrolled']} | | | | |")
        elif s == "waiters-idle-cpu":
            md.append(f"| {s} | {c} | {fmt(r['cpu_pct_of_core'])}% of one core in all over "
                      f"{fmt(r['seconds'])} s | {r['handrolled']} | | | | |")
        elif s == "webhook":
            md.append(f"| {s} (concurrency {c}) | {c} | {fmt(r['items_per_s'])} deliveries/s "
                      f"({r['delivered']} of {r['items']}; receiver {fmt(r['receiver_cpu_pct_of_core'])}% "
                      f"of a core) | {r['handrolled']} | | | {worker_cell(r)} | |")
        elif s == "many-queues":
            continue  # its own table below
        elif s == "worker-idle":
            md.append(f"| {s} ({fmt(r['seconds'])} s) | | | | | | {worker_cell(r)} | |")
        else:
            md.append(f"| {s} | {c} | {latencies(r)} ({r['samples']} items) | {r['handrolled']} | | | | |")
    loads = [r for r in rows if r["scenario"] in LOAD]
    if loads:
        md += ["", "Producers and consumers at full speed: consumed items/s per window (" +
               ", ".join(f"{r['scenario']} {r['window_s']} s" for r in loads) + "), last / first window ± its "
               "noise (a window's distance from the line through its neighbours, x sqrt(2); n/a below 3 "
               "windows), the live backlog per window and at the start and end, queue tables (table + "
               "indexes + TOAST) and dead tuples at the start and end; *growth per item* = (bytes at the end - at "
               "the start) / items consumed; *end / backlog* = bytes at the end / the live backlog's size (items "
               "left x bytes per item of the preloaded queue at the start); *dead per item* = (bytes at the end - "
               "the live backlog's size) / items consumed; *horizon* = transactions "
               "the held snapshot's xmin was behind at the end.", "",
               "| scenario | queue | items/s per window | last / first | backlog per window "
               "| backlog start -> end | bytes start -> end | growth per item | end / backlog | dead per item "
               "| dead tuples start -> end | horizon |", "|---|---|---|---:|---|---|---|---:|---:|---:|---|---:|"]
        for r in loads:
            for side, p in (("querator", ""), ("handrolled", "handrolled_")):
                age = r[side + "_held_xmin_age"]
                md.append(
                    f"| {r['scenario']} | {side} | {', '.join(fmt(x) for x in r[p + 'windows_items_per_s'])} "
                    f"| {last_first(r, p)} | {', '.join(f'{x:,}' for x in r[p + 'depth_per_window'])} "
                    f"| {r[side + '_items_start']:,} -> {r[side + '_items_end']:,} "
                    f"| {mib(r[side + '_bytes_start'])} -> {mib(r[side + '_bytes_end'])} "
                    f"| {fmt(r[side + '_bytes_growth_per_item'], ' B')} "
                    f"| {fmt(r[side + '_end_bytes_to_backlog'], 'x')} "
                    f"| {fmt(r[side + '_dead_bytes_per_item'], ' B')} "
                    f"| {r[side + '_dead_tuples_start']} -> {r[side + '_dead_tuples_end']} "
                    f"| {f'{age:,}' if age is not None else ''} |")
    md += many_queues_section(rows)
    errors = [(r["scenario"], r["clients"], side, e) for r in rows
              for side, key in (("querator", "errors"), ("hand-rolled", "handrolled_errors"))
              for e in r.get(key, [])]
    if errors:
        md += ["", "(!) errors in these runs (pgbench: a client aborted or a transaction failed after "
               "10 tries; held-*: the snapshot holder lost its xmin); the figure counts only what was done:", ""]
        md += [f"- {s}, {c} clients, {side}: `{e}`" for s, c, side, e in errors]
    md += ["", "Targets of shared/bench.md:", "", "| target | measured | |", "|---|---:|---|"]
    md += [f"| {n} | {v} | {ok} |" for n, v, ok in targets(rows)]
    return "\n".join(md) + "\n"


def many_queues_section(rows):
    many = [r for r in rows if r["scenario"] == "many-queues"]
    if not many:
        return []
    m = many[0]
    few, lots, c, cyc, mem, ls = m["load_few"], m["load_many"], m["create"], m["cycle"], m["memory"], m["listing"]
    expiry = lambda e: (f"p50 {fmt(e['p50_ms'])}, p99 {fmt(e['p99_ms'])}, max {fmt(e['max_ms'])} ms "
                        f"({e['samples']} expiries, {e['misses']} missed)")
    cpu = lambda l: f"{fmt(l['worker_cpu_pct_of_core'])}% (windows: " + ", ".join(
        fmt(w["cpu_pct_of_core"]) for w in l["worker_windows"]) + ")"
    rss = lambda l: ", ".join(fmt(w["rss_anon_mb"]) for w in l["worker_windows"])
    return ["", f"Many queues (issue 17): {m['queues']:,} queues of one partition, {m['active']} active for "
            f"{fmt(few['seconds'])} s: {m['expiring']} with their item leased for 1 s and never completed, the "
            f"others producing and cycling one item at {m['cycles_per_s_offered']}/s in all; first with only the "
            f"active queues present, then with all of them. The worker sampled every "
            f"{fmt(few['seconds'] / max(1, len(few['worker_windows'])))} s.", "",
            f"| figure | {few['queues_present']} queues | {m['queues']:,} queues |", "|---|---|---|",
            f"| expiry lateness (item back to a waiting lease - lease_deadline) | {expiry(few['expiry'])} "
            f"| {expiry(lots['expiry'])} |",
            f"| worker CPU, % of a core | {cpu(few)} | {cpu(lots)} |",
            f"| worker RssAnon per window, MB | {rss(few)} | {rss(lots)} |",
            f"| cycle-1 items/s, one connection, in turns | {', '.join(fmt(x) for x in cyc['one_queue_items_per_s'])} "
            f"(1 queue) | {', '.join(fmt(x) for x in cyc['n_queues_items_per_s'])} (median ratio "
            f"{fmt(cyc['ratio'], 'x')}) |",
            f"| queues_create of {c['queues']:,} (20 per statement) | | {fmt(c['ms_per_queue'])} ms each, "
            f"{fmt(c['seconds'])} s; worker CPU meanwhile {fmt(c['worker_cpu_s'])} s |",
            f"| context memory of a connection that used {mem['queues_used']:,} queues (produce, lease, complete) "
            f"| | {fmt(mem['context_mb'])} MB" + (f" (plans {fmt(mem['plans_mb'])} MB, relation cache "
                                                  f"{fmt(mem['relation_cache_mb'])} MB)" if "plans_mb" in mem else "")
            + f"; RssAnon {fmt(mem['rss_anon_mb'])} MB; max_cached_plans {mem['max_cached_plans']} |",
            f"| stats view (new connection / again), queues_list(NULL, 10000), queues_info, queue_stats | | "
            + (f"failed: `{ls['error']}`" if "error" in ls else
               f"{fmt(ls['stats_view_ms_new_connection'])} / {fmt(ls['stats_view_ms_again'])} ms, "
               f"{fmt(ls['queues_list_ms'])} ms, {fmt(ls['queues_info_ms'])} ms, {fmt(ls['queue_stats_ms'])} ms")
            + " |"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    tput, windows, storage, load_runs, worker, wal, latency, meta = load(args.dir)
    rows = build_rows(tput, windows, storage, load_runs, worker, wal, latency)
    text = markdown(rows, meta)
    with open(args.markdown, "w") as f:
        f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
            f.write("\n")
    print(text)


if __name__ == "__main__":
    main()
