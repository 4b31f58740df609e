#!/usr/bin/env python3
"""many-queues: what querator costs with thousands of queues present (issue 17).

In a database of its own (only its queues count), in this order:
  load-few   the ACTIVE queues only (the baseline): producers and consumers on most of
             them, 1 s leases never completed on the others, for --seconds; every
             --sample seconds the worker's CPU and RssAnon; expiry lateness = when a
             waiting lease got the expired item again (clock_timestamp()) - the lease's
             lease_deadline, both on the server
  create     the other queues up to --queues (1 partition each), 20 per statement:
             ms per queues_create, the worker's CPU meanwhile
  load-many  the same load with --queues present
  cycle      lease 1 + complete 1 (two autocommit calls, one connection) on a prefilled
             queue, in turns: in --one-dsn's database, where it is the only queue, and here
             with --queues present; CYCLE_ROUNDS turns each, the median of the ratios of
             each pair (turns, so that the shared machine's drift hits both sides alike)
  memory     one new connection produces, leases and completes one item on each of
             1,000 queues: its context memory (pg_backend_memory_contexts: all, the saved
             plans, the relation cache) and RssAnon
  listing    the stats view (twice, in a new connection), queues_list(NULL, 10000), queues_info
Prints {"many_queues": {...}} as JSON.
"""
import argparse
import json
import statistics
import threading
import time

from benchlib import PAYLOAD, connect, cpu_seconds, summary, worker_pids

EXPIRING = 10        # of the active queues: their items are leased for 1 s and never completed
CYCLE_THREADS = 2    # connections producing and cycling on the other active queues
CYCLES_PER_S = 50    # per cycle connection: a fixed rate, the same in both load phases
MEMORY_QUEUES = 1000
CYCLE_ROUNDS = 3
PREFILL = 30000


def rss_anon_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except FileNotFoundError:
        return None
    return None


def create_queues(cur, names):
    """queues_create for every name, 20 per statement (one transaction each)."""
    for i in range(0, len(names), 20):
        cur.execute("SELECT count(querator.queues_create(n, lease_timeout => '1 s')) FROM unnest(%s::text[]) n",
                    (names[i:i + 20],))


def cycle_rate(dsn, queue, seconds):
    """Items/s of lease 1 + complete 1 on a queue holding PREFILL items (emptied first)."""
    cur = connect(dsn).cursor()
    cur.execute("SELECT querator.queue_clear(%s, true, true, true)", (queue,))
    for _ in range(PREFILL // 1000):
        cur.execute("SELECT querator.queue_produce(%s, array_fill(%s::jsonb, ARRAY[1000]))", (queue, PAYLOAD))
    cur.execute("SELECT format('VACUUM (ANALYZE) %%s', table_name) FROM querator.queue_tables(%s)", (queue,))
    for (vacuum,) in cur.fetchall():
        cur.execute(vacuum)
    done, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        cur.execute("SELECT id FROM querator.queue_lease(%s, 'cycle', 1)", (queue,))
        row = cur.fetchone()
        if row is None:
            break  # ran dry: the figure is a lower bound
        cur.execute("SELECT querator.queue_complete(%s, %s::bigint)", (queue, row[0]))
        done += 1
    cur.connection.close()
    return round(done / (time.monotonic() - t0), 1)


def expiring(dsn, queue, stop, late, misses):
    """An item leased for 1 s again and again: each time a waiting lease gets it back after
    the worker ended the lease, its lateness."""
    cur = connect(dsn).cursor()
    cur.execute("SELECT querator.queue_clear(%s, true, true, true)", (queue,))  # the last phase's item
    cur.execute("SELECT querator.queue_produce(%s, ARRAY[%s::jsonb])", (queue, PAYLOAD))
    cur.execute("SELECT extract(epoch FROM lease_deadline) FROM querator.queue_lease(%s, 'never', 1)", (queue,))
    deadline = float(cur.fetchone()[0])
    while not stop.is_set():
        cur.execute("SELECT extract(epoch FROM clock_timestamp()), extract(epoch FROM lease_deadline)"
                    " FROM querator.queue_lease(%s, 'never', 1, wait => '3 s')", (queue,))
        row = cur.fetchone()
        if row is None:
            misses.append(queue)  # not back within 2 s of its deadline (the wait is 3 s)
            continue
        late.append(float(row[0]) - deadline)
        deadline = float(row[1])
    cur.connection.close()


def cycling(dsn, queues, stop, counts):
    """Produce 1, lease 1, complete 1 on each queue in turn, at CYCLES_PER_S."""
    cur = connect(dsn).cursor()
    n, t0 = 0, time.monotonic()
    while not stop.is_set():
        q = queues[n % len(queues)]
        cur.execute("SELECT querator.queue_produce(%s, ARRAY[%s::jsonb])", (q, PAYLOAD))
        cur.execute("SELECT id FROM querator.queue_lease(%s, 'cycle', 1)", (q,))
        row = cur.fetchone()
        if row is not None:
            cur.execute("SELECT querator.queue_complete(%s, %s::bigint)", (q, row[0]))
        n += 1
        pause = t0 + n / CYCLES_PER_S - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    counts.append(n)
    cur.connection.close()


def load(dsn, active, seconds, sample):
    """The active queues' load for `seconds`: lateness of the expiring ones, the worker sampled."""
    cur = connect(dsn).cursor()
    (pid,) = worker_pids(cur)
    stop, late, misses, counts = threading.Event(), [], [], []
    threads = [threading.Thread(target=expiring, args=(dsn, q, stop, late, misses)) for q in active[:EXPIRING]]
    rest = active[EXPIRING:]
    threads += [threading.Thread(target=cycling, args=(dsn, rest[i::CYCLE_THREADS], stop, counts))
                for i in range(CYCLE_THREADS)]
    for t in threads:
        t.start()
    windows, t0 = [], time.monotonic()
    cpu0, w0 = cpu_seconds([pid]), t0
    while time.monotonic() - t0 < seconds:
        time.sleep(sample)
        cpu1, w1 = cpu_seconds([pid]), time.monotonic()
        windows.append({"cpu_pct_of_core": round(100 * (cpu1 - cpu0) / (w1 - w0), 2) if None not in (cpu0, cpu1)
                        else None, "rss_anon_mb": rss_anon_mb(pid)})
        cpu0, w0 = cpu1, w1
    stop.set()
    for t in threads:
        t.join()
    cpu = [w["cpu_pct_of_core"] for w in windows if w["cpu_pct_of_core"] is not None]
    return {"seconds": seconds, "cycles": sum(counts), "expiry": {**summary(late), "misses": len(misses)},
            "worker_cpu_pct_of_core": round(sum(cpu) / len(cpu), 2) if cpu else None,
            "worker_windows": windows}


def backend_memory(dsn, queues):
    """One connection uses every queue of `queues` through produce, lease and complete."""
    cur = connect(dsn).cursor()
    cur.execute("SELECT pg_backend_pid(), current_setting('querator.max_cached_plans')")
    pid, plans = cur.fetchone()
    for q in queues:
        cur.execute("SELECT querator.queue_produce(%s, ARRAY[%s::jsonb])", (q, PAYLOAD))
        cur.execute("SELECT id FROM querator.queue_lease(%s, 'memory', 1)", (q,))
        row = cur.fetchone()
        if row is not None:
            cur.execute("SELECT querator.queue_complete(%s, %s::bigint)", (q, row[0]))
    # all contexts; the saved plans (what querator.max_cached_plans bounds); PostgreSQL's relation cache
    cur.execute("SELECT sum(total_bytes),"
                " sum(total_bytes) FILTER (WHERE name IN ('CachedPlan', 'CachedPlanQuery', 'CachedPlanSource',"
                "                                          'SPI Plan')),"
                " sum(total_bytes) FILTER (WHERE name IN ('CacheMemoryContext', 'index info'))"
                " FROM pg_backend_memory_contexts")
    context, plan_bytes, cache = (int(x) for x in cur.fetchone())
    out = {"queues_used": len(queues), "context_mb": round(context / 1048576, 1),
           "plans_mb": round(plan_bytes / 1048576, 1), "relation_cache_mb": round(cache / 1048576, 1),
           "rss_anon_mb": rss_anon_mb(pid), "max_cached_plans": int(plans)}
    cur.connection.close()
    return out


def timed(cur, sql):
    t0 = time.monotonic()
    cur.execute(sql)
    cur.fetchall()
    return round((time.monotonic() - t0) * 1000, 1)


def listing(dsn, some_queue):
    cur = connect(dsn).cursor()
    out = {"stats_view_ms_new_connection": timed(cur, "SELECT count(*) FROM querator.stats"),
           "stats_view_ms_again": timed(cur, "SELECT count(*) FROM querator.stats"),
           "queues_list_ms": timed(cur, "SELECT count(*) FROM querator.queues_list(NULL, 10000)")}
    t0 = time.monotonic()
    for _ in range(100):
        cur.execute("SELECT * FROM querator.queues_info(%s)", (some_queue,))
        cur.fetchall()
    out["queues_info_ms"] = round((time.monotonic() - t0) * 10, 3)
    cur.execute("SELECT * FROM querator.queue_stats(%s)", (some_queue,))
    out["queue_stats_ms"] = timed(cur, f"SELECT * FROM querator.queue_stats('{some_queue}')")
    cur.connection.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--one-dsn", required=True, help="a database with querator and no queue")
    ap.add_argument("--queues", type=int, default=10000)
    ap.add_argument("--active", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=300, help="each load phase")
    ap.add_argument("--sample", type=int, default=10, help="seconds per sample of the worker")
    ap.add_argument("--cycle-seconds", type=int, default=30)
    args = ap.parse_args()
    cur = connect(args.dsn).cursor()
    active = [f"mq_active_{i}" for i in range(args.active)]
    idle = [f"mq_{i:05d}" for i in range(args.queues - args.active - 1)]
    out = {"queues": args.queues, "active": args.active, "expiring": EXPIRING,
           "cycles_per_s_offered": CYCLE_THREADS * CYCLES_PER_S}
    create_queues(cur, ["mq_cycle"])
    create_queues(cur, active)
    time.sleep(2)
    out["load_few"] = {"queues_present": args.active + 1, **load(args.dsn, active, args.seconds, args.sample)}
    (pid,) = worker_pids(cur)
    cpu0, t0 = cpu_seconds([pid]), time.monotonic()
    create_queues(cur, idle)
    elapsed, cpu1 = time.monotonic() - t0, cpu_seconds([pid])
    out["create"] = {"queues": len(idle), "seconds": round(elapsed, 1),
                     "ms_per_queue": round(elapsed * 1000 / max(1, len(idle)), 2),
                     "worker_cpu_s": round(cpu1 - cpu0, 2) if None not in (cpu0, cpu1) else None}
    cur.execute("VACUUM ANALYZE querator.queues")
    time.sleep(2)
    out["load_many"] = {"queues_present": args.queues, **load(args.dsn, active, args.seconds, args.sample)}
    create_queues(connect(args.one_dsn).cursor(), ["mq_cycle"])
    one, many = [], []
    for _ in range(CYCLE_ROUNDS):
        one.append(cycle_rate(args.one_dsn, "mq_cycle", args.cycle_seconds))
        many.append(cycle_rate(args.dsn, "mq_cycle", args.cycle_seconds))
    out["cycle"] = {"seconds": args.cycle_seconds, "one_queue_items_per_s": one, "n_queues_items_per_s": many,
                    "ratio": round(statistics.median(m / o for m, o in zip(many, one)), 3)}
    out["memory"] = backend_memory(args.dsn, (active + idle)[:MEMORY_QUEUES])
    try:  # last, and not to lose the figures above when it fails
        out["listing"] = listing(args.dsn, idle[len(idle) // 2] if idle else "mq_cycle")
    except Exception as e:  # noqa: BLE001 - reported in the results
        out["listing"] = {"error": str(e).strip()}
    print(json.dumps({"many_queues": out}))


if __name__ == "__main__":
    main()
