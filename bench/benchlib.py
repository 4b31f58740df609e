#!/usr/bin/env python3
"""What bench/latency.py and bench/webhook.py share, and bench/run's reading of the worker's CPU.

As a command (as the postgres user, with psycopg2):
  benchlib.py worker-cpu DSN                 prints a reading: "pid:cpu seconds:monotonic seconds"
  benchlib.py worker-cpu DSN --since READING prints "cpu seconds<TAB>wall seconds" since READING
                                             (cpu empty when the worker was restarted meanwhile)
"""
import argparse
import math
import os
import time

PAYLOAD = ('{"event":"order.created","order_id":1234567,"customer":"c-000042",'
           '"amount_cents":4999,"currency":"EUR"}')

# The querator worker of the database we are connected to (one per database).
WORKER_PID_SQL = ("SELECT pid FROM pg_stat_activity"
                  " WHERE backend_type = 'querator worker' AND datname = current_database()")


def connect(dsn, **kwargs):
    import psycopg2  # here, not above: `worker-cpu --since` reads /proc before paying for this import
    conn = psycopg2.connect(dsn, **kwargs)
    if not kwargs.get("async_"):
        conn.autocommit = True  # async connections are always autocommit
    return conn


def fresh_queue(cur, name, **options):
    """Drops queue NAME if it exists and creates it with OPTIONS (queues_create's named arguments)."""
    cur.execute("SELECT querator.queues_delete(name, force => true)"
                " FROM querator.queues WHERE name = %s", (name,))
    named = "".join(f", {key} => %s" for key in options)
    cur.execute(f"SELECT querator.queues_create(%s{named})", (name, *options.values()))


def summary(samples_s):
    """Nearest-rank percentiles of a list of seconds, in ms."""
    xs = sorted(samples_s)
    if not xs:
        return {"samples": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    rank = lambda p: xs[max(0, math.ceil(p / 100 * len(xs)) - 1)] * 1000
    return {"samples": len(xs), "p50_ms": round(rank(50), 3), "p99_ms": round(rank(99), 3),
            "max_ms": round(xs[-1] * 1000, 3)}


def cpu_seconds(pids):
    """utime + stime of the processes, in seconds; None when one of them is gone (a
    restarted worker, a waiter that failed): its figure over a stretch would be wrong."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                line = f.read()
        except FileNotFoundError:
            return None
        # The command name, in parentheses, may contain spaces: count the fields after it.
        # There state is the first field (3rd of the line), utime the 12th, stime the 13th.
        fields = line[line.rindex(")") + 2:].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU of some processes over a stretch of time: start(), then stop() -> figures."""

    def __init__(self, pids):
        self.pids = list(pids)

    def start(self):
        self.cpu0, self.t0 = cpu_seconds(self.pids), time.monotonic()
        return self

    def stop(self):
        cpu1, wall = cpu_seconds(self.pids), time.monotonic() - self.t0
        if not self.pids or None in (self.cpu0, cpu1):
            return {"cpu_s": None, "wall_s": round(wall, 3), "cpu_pct_of_core": None}
        cpu = cpu1 - self.cpu0
        return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                "cpu_pct_of_core": round(100 * cpu / wall, 2)}


def worker_pids(cur):
    cur.execute(WORKER_PID_SQL)
    return [pid for (pid,) in cur.fetchall()]


def worker_meter(cur):
    return CpuMeter(worker_pids(cur))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["worker-cpu"])
    ap.add_argument("dsn")
    ap.add_argument("--since", help="a reading printed before")
    args = ap.parse_args()
    if args.since is None:
        pids = worker_pids(connect(args.dsn).cursor())
        cpu = cpu_seconds(pids)
        print(f"{','.join(map(str, pids))}:{'' if cpu is None else cpu}:{time.monotonic()}")
        return
    # Read first, connect after: the stretch ends now, not after the connection is made.
    pids0, cpu0, then = args.since.split(":")
    cpu, now = cpu_seconds(pids0.split(",")) if pids0 else None, time.monotonic()
    same_worker = pids0 == ",".join(map(str, worker_pids(connect(args.dsn).cursor())))
    measured = same_worker and cpu is not None and cpu0 != ""
    print(f"{round(cpu - float(cpu0), 3) if measured else ''}\t{round(now - float(then), 3)}")


if __name__ == "__main__":
    main()
