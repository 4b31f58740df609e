#!/usr/bin/env python3
"""Wake latency and expiry precision of querator; bench/run calls this.

wake:   consumers wait (wait => '5 s') on an empty queue; a producer commits one
        item at a time, 20 ms apart, so every item finds waiting consumers.
        Latency = consumer's lease call returned - producer's commit returned
        (one process, one monotonic clock).
expiry: items are leased with a 1 s lease and never completed, the leases spread
        over 0.8 s; a collector waits on the queue for them to come back.
        Precision = server time at which the collector leased the item again -
        its first lease_deadline (both clock_timestamp() on the server).

Prints one JSON object: {"wake": {...}, "expiry": {...}} with p50/p99/max in ms.
"""
import argparse
import json
import math
import threading
import time

import psycopg2

PAYLOAD = ('{"event":"order.created","order_id":1234567,"customer":"c-000042",'
           '"amount_cents":4999,"currency":"EUR"}')


def connect(dsn):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    return conn


def fresh_queue(cur, name, lease_timeout):
    cur.execute("SELECT querator.queues_delete(name, force => true)"
                " FROM querator.queues WHERE name = %s", (name,))
    cur.execute("SELECT querator.queues_create(%s, lease_timeout => %s)", (name, lease_timeout))


def summary(samples_s):
    """Nearest-rank percentiles of a list of seconds, in ms."""
    xs = sorted(samples_s)
    if not xs:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    rank = lambda p: xs[max(0, math.ceil(p / 100 * len(xs)) - 1)] * 1000
    return {"samples": len(xs), "p50_ms": round(rank(50), 3), "p99_ms": round(rank(99), 3),
            "max_ms": round(xs[-1] * 1000, 3)}


def wake_latency(dsn, items, consumers):
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_wake", "1 minute")
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


def expiry_precision(dsn, rounds, per_round):
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_expiry", "1 second")
    leaser = connect(dsn).cursor()
    collector = connect(dsn).cursor()
    samples, missing = [], 0
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
        back = {}
        give_up = time.monotonic() + 10
        while len(back) < len(deadline_of) and time.monotonic() < give_up:
            collector.execute(
                "SELECT id, convert_from(payload, 'UTF8'), extract(epoch FROM clock_timestamp())"
                " FROM querator.queue_lease('bench_expiry', 'collector', 100, wait => '2 s')")
            rows = collector.fetchall()
            for _, payload, at in rows:
                back[payload] = float(at)
            if rows:
                collector.execute("SELECT querator.queue_complete('bench_expiry', %s::bigint[])",
                                  ([row[0] for row in rows],))
        samples += [back[p] - deadline_of[p] for p in deadline_of if p in back]
        missing += len(deadline_of) - len(back)
    result = summary(samples)
    result["lost"] = missing
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--wake-items", type=int, default=300)
    ap.add_argument("--wake-consumers", type=int, default=4)
    ap.add_argument("--expiry-rounds", type=int, default=3)
    ap.add_argument("--expiry-items", type=int, default=100, help="items per round")
    args = ap.parse_args()
    print(json.dumps({
        "wake": wake_latency(args.dsn, args.wake_items, args.wake_consumers),
        "expiry": expiry_precision(args.dsn, args.expiry_rounds, args.expiry_items),
    }))


if __name__ == "__main__":
    main()
