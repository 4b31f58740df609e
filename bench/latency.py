#!/usr/bin/env python3
"""Latencies and the cost of waiting in querator; bench/run calls this.

wake:     consumers wait (wait => '5 s') on an empty queue; a producer commits one
          item at a time, 20 ms apart, so every item finds waiting consumers.
          Latency = consumer's lease call returned - producer's commit returned
          (one process, one monotonic clock).
waiters:  100 consumers wait (wait => '60 s') on an empty queue. Idle CPU = utime +
          stime of their backends (/proc) over --idle-seconds. Then one produce of
          100 items: receipt latency = each waiter's call returned - the producer's
          call returned (one event loop over all connections, one monotonic clock),
          and how many waiters got exactly one item.
expiry:   items are leased with a 1 s lease and never completed, the leases spread
          over 0.8 s; a collector waits on the queue for them to come back.
          Precision = server time at which the collector leased the item again -
          its first lease_deadline (both clock_timestamp() on the server).
schedule: items are produced with enqueue_at 1 s ahead, due times spread over
          0.8 s; the same collector. Precision = server time at which the
          collector leased the item - its enqueue_at.

Prints one JSON object: {"wake", "waiters_idle", "burst", "expiry", "schedule"},
latencies as p50/p99/max in ms.
"""
import argparse
import json
import select
import threading
import time

import psycopg2
import psycopg2.extensions

from benchlib import PAYLOAD, CpuMeter, connect, fresh_queue, summary


def wake_latency(dsn, items, consumers):
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_wake", lease_timeout="1 minute")
    received = {}  # item id -> monotonic time the lease call returned
    stop = threading.Event()

    def consume(n):
        cur = connect(dsn).cursor()
        while not stop.is_set():
            cur.execute("SELECT id FROM querator.queue_lease('bench_wake', %s, 1, wait => '5 s')",
                        (f"waiter-{n}",))
            rows = cur.fetchall()
            now = time.monotonic()
            for (item_id,) in rows:
                received[item_id] = now
                cur.execute("SELECT querator.queue_complete('bench_wake', %s::bigint)", (item_id,))

    threads = [threading.Thread(target=consume, args=(n,), daemon=True) for n in range(consumers)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # every consumer is waiting

    cur = connect(dsn).cursor()
    sent, sent_before = {}, {}
    for _ in range(items):
        time.sleep(0.02)
        before = time.monotonic()
        cur.execute("SELECT querator.queue_produce('bench_wake', %s::jsonb)", (PAYLOAD,))
        (item_id,) = cur.fetchone()
        sent[item_id] = time.monotonic()
        sent_before[item_id] = before
    deadline = time.monotonic() + 10
    while len(received) < items and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for _ in threads:  # one item per waiter lets each loop see `stop`
        cur.execute("SELECT querator.queue_produce('bench_wake', %s::jsonb)", (PAYLOAD,))
    for t in threads:
        t.join(timeout=6)

    got = [i for i in sent if i in received]
    result = summary([received[i] - sent[i] for i in got])
    result["lost"] = items - len(got)
    result["consumers"] = consumers
    # From the start of the producing call instead of its return: includes the
    # producer's own commit (WAL flush); an upper bound for "commit to receipt".
    upper = summary([received[i] - sent_before[i] for i in got])
    result["p50_ms_from_call_start"] = upper["p50_ms"]
    result["p99_ms_from_call_start"] = upper["p99_ms"]
    return result


def collect(cur, queue, expected):
    """Leases from QUEUE, waiting, until the EXPECTED payloads came (or 10 s passed);
    returns {payload: server epoch at which the lease returned it}. Completes what it got."""
    back = {}
    give_up = time.monotonic() + 10
    while len(back) < len(expected) and time.monotonic() < give_up:
        cur.execute("SELECT id, convert_from(payload, 'UTF8'), extract(epoch FROM clock_timestamp())"
                    " FROM querator.queue_lease(%s, 'collector', 100, wait => '2 s')", (queue,))
        rows = cur.fetchall()
        for _, payload, at in rows:
            back[payload] = float(at)
        if rows:
            cur.execute("SELECT querator.queue_complete(%s, %s::bigint[])", (queue, [row[0] for row in rows]))
    return back


def lateness(due, back):
    """Precision figures: how late each payload came back after its due time (server epochs)."""
    result = summary([back[p] - due[p] for p in due if p in back])
    result["lost"] = sum(1 for p in due if p not in back)
    return result


def expiry_precision(dsn, rounds, per_round):
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_expiry", lease_timeout="1 second")
    leaser = connect(dsn).cursor()
    collector = connect(dsn).cursor()
    due, back = {}, {}
    for r in range(rounds):
        payloads = [json.dumps({"round": r, "k": k}) for k in range(per_round)]
        leaser.execute("SELECT querator.queue_produce('bench_expiry', %s::jsonb[])", (payloads,))
        deadline_of = {}
        for _ in range(per_round):  # spread the deadlines over 0.8 s
            leaser.execute("SELECT convert_from(payload, 'UTF8'), extract(epoch FROM lease_deadline)"
                           " FROM querator.queue_lease('bench_expiry', 'leaser', 1)")
            for payload, deadline in leaser.fetchall():
                deadline_of[payload] = float(deadline)
            time.sleep(0.8 / per_round)
        back.update(collect(collector, "bench_expiry", deadline_of))
        due.update(deadline_of)
    return lateness(due, back)


def schedule_precision(dsn, rounds, per_round):
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_schedule")
    producer = connect(dsn).cursor()
    collector = connect(dsn).cursor()
    due, back = {}, {}
    for r in range(rounds):
        # One transaction: every item is still 1 s ahead when the produce commits.
        producer.execute(
            "SELECT token, extract(epoch FROM due),"
            "       querator.queue_produce('bench_schedule', token, enqueue_at => due)"
            "  FROM (SELECT %s || '-' || k AS token, now() + interval '1 s' + k * %s * interval '1 s' AS due"
            "          FROM generate_series(0, %s - 1) k) items",
            (f"round-{r}", 0.8 / per_round, per_round))
        enqueue_at = {token: float(at) for token, at, _ in producer.fetchall()}
        back.update(collect(collector, "bench_schedule", enqueue_at))
        due.update(enqueue_at)
    return lateness(due, back)


def run_async(conns, timeout):
    """Polls async connections until each has finished what it was sent (or TIMEOUT
    seconds passed); returns {connection: monotonic time it finished}. A connection
    whose statement failed is left out, as one that did not finish."""
    done, pending = {}, dict.fromkeys(conns, psycopg2.extensions.POLL_WRITE)
    give_up = time.monotonic() + timeout
    while pending:
        readers = [c for c, state in pending.items() if state == psycopg2.extensions.POLL_READ]
        writers = [c for c, state in pending.items() if state == psycopg2.extensions.POLL_WRITE]
        ready_r, ready_w, _ = select.select(readers, writers, [], max(0, give_up - time.monotonic()))
        for conn in ready_r + ready_w:
            try:
                state = conn.poll()
            except psycopg2.Error:
                del pending[conn]
                continue
            if state == psycopg2.extensions.POLL_OK:
                done[conn] = time.monotonic()
                del pending[conn]
            else:
                pending[conn] = state
        if time.monotonic() >= give_up:
            break
    return done


def waiters(dsn, count, idle_seconds):
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_waiters")
    conns = [connect(dsn, async_=True) for _ in range(count)]
    producer = connect(dsn, async_=True)
    run_async(conns + [producer], 30)
    cursors = [conn.cursor() for conn in conns]
    for n, cur in enumerate(cursors):
        cur.execute("SELECT count(*) FROM querator.queue_lease('bench_waiters', %s, 1, wait => '60 s')",
                    (f"waiter-{n}",))
    pids = [conn.get_backend_pid() for conn in conns]
    asleep, give_up = 0, time.monotonic() + 30
    while asleep < count and time.monotonic() < give_up:
        run_async(conns, 0.01)  # sends the queries; a waiter cannot answer yet (empty queue)
        admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"
                      " AND wait_event_type = 'Extension' AND wait_event = 'Extension'", (pids,))
        (asleep,) = admin.fetchone()
    idle = CpuMeter(pids).start()
    time.sleep(idle_seconds)
    idle = idle.stop()

    produce = producer.cursor()
    produce.execute("SELECT querator.queue_produce('bench_waiters', %s::jsonb[])", ([PAYLOAD] * count,))
    done = run_async(conns + [producer], 20)
    for conn in conns:
        if conn not in done:
            conn.cancel()  # a waiter left without an item: do not leave it waiting
    items = [cur.fetchone()[0] if conn in done else None for conn, cur in zip(conns, cursors)]
    for conn in conns + [producer]:
        conn.close()
    idle = {"consumers": count, "asleep": asleep, "seconds": idle["wall_s"], "cpu_s": idle["cpu_s"],
            "cpu_pct_of_core": idle["cpu_pct_of_core"]}
    burst = summary([done[c] - done[producer] for c in conns if c in done] if producer in done else [])
    burst.update({"consumers": count, "got_one_item": items.count(1), "lost": items.count(None)})
    return idle, burst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--wake-items", type=int, default=300)
    ap.add_argument("--wake-consumers", type=int, default=4)
    ap.add_argument("--expiry-rounds", type=int, default=3)
    ap.add_argument("--expiry-items", type=int, default=100, help="items per round (expiry and schedule)")
    ap.add_argument("--waiters", type=int, default=100)
    ap.add_argument("--idle-seconds", type=float, default=10)
    args = ap.parse_args()
    wake = wake_latency(args.dsn, args.wake_items, args.wake_consumers)
    idle, burst = waiters(args.dsn, args.waiters, args.idle_seconds)
    print(json.dumps({
        "wake": wake, "waiters_idle": idle, "burst": burst,
        "expiry": expiry_precision(args.dsn, args.expiry_rounds, args.expiry_items),
        "schedule": schedule_precision(args.dsn, args.expiry_rounds, args.expiry_items),
    }))


if __name__ == "__main__":
    main()
