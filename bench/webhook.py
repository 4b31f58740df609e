#!/usr/bin/env python3
"""Webhook throughput of querator; bench/run calls this.

For each concurrency: a fresh local receiver (test/http_sink.py, path /ok) and a
queue delivering to it with that webhook_concurrency. The queue is paused while
--items items are produced, then resumed; deliveries per second = items / (time from
the resume to the queue found empty, polled every 20 ms). Over the same time: the
CPU (utime + stime) of the querator worker, which makes the transfers, and of the
receiver, which shares the machine.

Prints one JSON object: {"webhook": [{"concurrency": ..., "deliveries_per_s": ...}, ...]}.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchlib import CpuMeter, connect, fresh_queue, worker_meter


def start_receiver(sink, workdir):
    """Starts test/http_sink.py on a free loopback port; returns (process, port, request log)."""
    log, port_file = os.path.join(workdir, "requests.jsonl"), os.path.join(workdir, "port")
    proc = subprocess.Popen([sys.executable, sink, "--port", "0", "--log", log, "--port-file", port_file],
                            stdin=subprocess.DEVNULL)
    give_up = time.monotonic() + 10
    while not os.path.exists(port_file):
        if proc.poll() is not None or time.monotonic() > give_up:
            proc.kill()
            sys.exit("the http sink did not start")
        time.sleep(0.02)
    with open(port_file) as f:
        return proc, int(f.read()), log


def received(log):
    """(requests, distinct bodies) the receiver recorded."""
    with open(log) as f:
        bodies = [json.loads(line)["body"] for line in f if line.endswith("\n")]
    return len(bodies), len(set(bodies))


def throughput(dsn, sink, concurrency, items, timeout):
    with tempfile.TemporaryDirectory() as workdir:
        receiver, port, log = start_receiver(sink, workdir)
        try:
            cur = connect(dsn).cursor()
            queue = f"bench_webhook_{concurrency}"
            fresh_queue(cur, queue, webhook_url=f"http://127.0.0.1:{port}/ok",
                        webhook_concurrency=concurrency)
            cur.execute("SELECT querator.queue_pause(%s)", (queue,))
            cur.execute("SELECT querator.queue_produce(%s, array_agg(jsonb_build_object('n', g)))"
                        "  FROM generate_series(1, %s) g GROUP BY g / 1000", (queue, items))  # 1000 a call
            worker, sink_cpu = worker_meter(cur).start(), CpuMeter([receiver.pid]).start()
            cur.execute("SELECT querator.queue_resume(%s)", (queue,))
            drained, give_up = False, time.monotonic() + timeout
            while not drained and time.monotonic() < give_up:
                time.sleep(0.02)
                cur.execute("SELECT NOT EXISTS (SELECT 1 FROM querator.storage_items_list(%s, NULL, 1))",
                            (queue,))
                (drained,) = cur.fetchone()
            worker, sink_cpu = worker.stop(), sink_cpu.stop()
            requests, delivered = received(log)
            cur.execute("SELECT querator.queues_delete(%s, force => true)", (queue,))
        finally:
            receiver.kill()
            receiver.wait()
    seconds = worker["wall_s"]
    return {
        "concurrency": concurrency, "items": items, "drained": drained, "seconds": seconds,
        "deliveries_per_s": round(delivered / seconds, 1),
        "delivered": delivered, "requests": requests,
        "worker_cpu_s": worker["cpu_s"], "worker_cpu_pct_of_core": worker["cpu_pct_of_core"],
        "worker_cpu_ms_per_1000_items": (round(worker["cpu_s"] * 1e6 / delivered, 1)
                                         if worker["cpu_s"] is not None and delivered else None),
        "receiver_cpu_pct_of_core": sink_cpu["cpu_pct_of_core"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--sink", required=True, help="path of test/http_sink.py")
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for a queue to drain")
    args = ap.parse_args()
    print(json.dumps({"webhook": [throughput(args.dsn, args.sink, c, args.items, args.timeout)
                                  for c in args.concurrency]}))


if __name__ == "__main__":
    main()
