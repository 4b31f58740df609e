#!/usr/bin/env python3
"""Latencies and the cost of waiting in querator; bench/run calls this.

wake:     consumers wait (wait => '5 s') on an empty queue; a producer commits one
          item at a time (BEGIN, produce, COMMIT), 20 ms apart, so every item finds
          waiting consumers. Latency = consumer's lease call returned - just before
          the producer sent its COMMIT (one process, one select loop, one monotonic
          clock): what a user of the queue sees.
waiters:  100 consumers wait (wait => '60 s') on an empty queue. Idle CPU = utime +
          stime of their backends (/proc) over --idle-seconds. Then one produce of
          100 items: receipt latency = each waiter's call returned - the producer's
          call returned (one event loop over all connections, one monotonic clock),
          and how many waiters got exactly one item.
expiry:   items are leased with a 1 s lease and never completed, in 10 leases
          spread over 0.8 s; a collector waits on the queue for them to come back.
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
import time

import psycopg2
import psycopg2.extensions

from benchlib import PAYLOAD, CpuMeter, connect, fresh_queue, summary


class Statements:
    """Statements in flight on asynchronous connections, driven by one select loop, so
    every time comes from one monotonic clock with no thread scheduling in between."""

    def __init__(self):
        self.pending = {}  # connection -> [cursor, then, poll state]

    def send(self, conn, sql, args=None, then=None):
        """Sends SQL on CONN; once its result is in, then(cursor, monotonic time) runs."""
        cur = conn.cursor()
        cur.execute(sql, args)
        self.pending[conn] = [cur, then, psycopg2.extensions.POLL_WRITE]

    def run(self, done, timeout):
        """Serves every pending statement until done() is true or TIMEOUT seconds passed."""
        give_up = time.monotonic() + timeout
        while not done() and self.pending:
            left = give_up - time.monotonic()
            if left <= 0:
                return
            state_of = {c: p[2] for c, p in self.pending.items()}
            ready_r, ready_w, _ = select.select(
                [c for c, s in state_of.items() if s == psycopg2.extensions.POLL_READ],
                [c for c, s in state_of.items() if s == psycopg2.extensions.POLL_WRITE], [], left)
            for conn in ready_r + ready_w:
                state = conn.poll()
                if state != psycopg2.extensions.POLL_OK:
                    self.pending[conn][2] = state
                    continue
                now = time.monotonic()
                cur, then, _ = self.pending.pop(conn)
                if then:
                    then(cur, now)

    def call(self, conn, sql, args=None, timeout=10):
        """Runs SQL on CONN to its end (serving the others meanwhile); returns its cursor."""
        self.send(conn, sql, args)
        cur = self.pending[conn][0]
        self.run(lambda: conn not in self.pending, timeout)
        if conn in self.pending:
            raise TimeoutError(f"no answer to {sql!r} in {timeout} s")
        return cur


def wake_latency(dsn, items, consumers):
    """As a user sees it: from just before the producer sends COMMIT to the waiting
    consumer's queue_lease call returning, both measured in this one process."""
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_wake", lease_timeout="1 minute")
    conns = [connect(dsn, async_=True) for _ in range(consumers + 1)]
    run_async(conns, 30)
    producer, waiters = conns[0], conns[1:]
    loop = Statements()
    received = {}  # item id -> monotonic time its lease call returned

    def wait(n):
        loop.send(waiters[n], "SELECT id FROM querator.queue_lease('bench_wake', %s, 1, wait => '5 s')",
                  (f"waiter-{n}",), lambda cur, at: leased(n, cur, at))

    def leased(n, cur, at):
        rows = cur.fetchall()
        for (item_id,) in rows:
            received[item_id] = at
        if rows:  # complete it, then wait again
            loop.send(waiters[n], "SELECT querator.queue_complete('bench_wake', %s::bigint)", (rows[0][0],),
                      lambda cur, at: wait(n))
        else:
            wait(n)

    for n in range(consumers):
        wait(n)
    loop.run(lambda: False, 0.5)  # every consumer is waiting
    sent, commit_rtt = {}, []
    for _ in range(items):
        loop.run(lambda: False, 0.02)
        loop.call(producer, "BEGIN")
        (item_id,) = loop.call(producer, "SELECT querator.queue_produce('bench_wake', %s::jsonb)",
                               (PAYLOAD,)).fetchone()
        sent[item_id] = time.monotonic()
        loop.call(producer, "COMMIT")
        commit_rtt.append(time.monotonic() - sent[item_id])
    loop.run(lambda: all(i in received for i in sent), 10)
    for conn in conns:
        if conn in loop.pending:
            conn.cancel()  # a waiter still waiting: do not leave it behind
        conn.close()

    got = [i for i in sent if i in received]
    result = summary([received[i] - sent[i] for i in got])
    result["lost"] = items - len(got)
    result["consumers"] = consumers
    # The producer's own COMMIT round trip (its WAL flush), the first part of the figure.
    commit = summary(commit_rtt)
    result["producer_commit_p50_ms"] = commit["p50_ms"]
    result["producer_commit_p99_ms"] = commit["p99_ms"]
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


def expiry_precision(dsn, rounds, per_round, groups=10):
    admin = connect(dsn).cursor()
    fresh_queue(admin, "bench_expiry", lease_timeout="1 second")
    leaser = connect(dsn).cursor()
    collector = connect(dsn).cursor()
    due, back, collector_late = {}, {}, 0.0
    for r in range(rounds):
        payloads = [json.dumps({"round": r, "k": k}) for k in range(per_round)]
        leaser.execute("SELECT querator.queue_produce('bench_expiry', %s::jsonb[])", (payloads,))
        deadline_of = {}
        # The deadlines spread over 0.8 s in GROUPS leases on a clock schedule: the
        # collector must be waiting before the first lease ends. With a call per
        # item, leasing took 1.5 s on a loaded machine and the collector came
        # 0.5-0.6 s after the first deadline: that, not the worker, was the p99.
        start = time.monotonic()
        for g in range(groups):
            time.sleep(max(0.0, start + 0.8 * g / groups - time.monotonic()))
            leaser.execute("SELECT convert_from(payload, 'UTF8'), extract(epoch FROM lease_deadline)"
                           " FROM querator.queue_lease('bench_expiry', 'leaser', %s)",
                           (per_round * (g + 1) // groups - per_round * g // groups,))
            for payload, deadline in leaser.fetchall():
                deadline_of[payload] = float(deadline)
        leaser.execute("SELECT extract(epoch FROM clock_timestamp())")
        collector_late = max(collector_late, float(leaser.fetchone()[0]) - min(deadline_of.values()))
        back.update(collect(collector, "bench_expiry", deadline_of))
        due.update(deadline_of)
    result = lateness(due, back)
    # Above 0, items came due before the collector waited: the figure includes that wait.
    result["collector_late_ms"] = round(collector_late * 1000, 3) if collector_late > 0 else 0
    return result


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
