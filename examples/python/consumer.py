"""A querator consumer with psycopg2: CONSUMERS threads, each running the one-call
loop queue_complete_and_lease (complete the last batch, lease the next, wait up to
WAIT for it), BATCH items at a time. SIGTERM or SIGINT stops it gracefully: each
thread finishes the batch in hand, completes it, and the process exits.
Connection settings come from the PG* environment variables.

Prints "consumed <id> <json|bytes> <md5 of the payload bytes> <what the driver gave>".
"""
import datetime
import hashlib
import os
import signal
import sys
import threading

import psycopg2.pool

QUEUE = os.environ.get("QUEUE", "jobs")
CONSUMERS = int(os.environ.get("CONSUMERS", "2"))
BATCH = int(os.environ.get("BATCH", "10"))
WAIT = os.environ.get("WAIT", "5 seconds")
CLIENT_ID = os.environ.get("CLIENT_ID", "python-%d" % os.getpid())

# Pool sizing: each thread's long poll holds a connection for up to WAIT, so the
# pool has one per thread. Producers sharing a pool with long-polling consumers
# need maxconn >= consumers + producers (or a pool of their own), or they wait.
pool = psycopg2.pool.ThreadedConnectionPool(1, CONSUMERS, "")
stopping = threading.Event()
output = threading.Lock()

LEASE = """SELECT id, encoding, payload, querator.payload_json(payload, encoding)
             FROM querator.queue_complete_and_lease(%s, %s, %s, %s, %s)"""


def handle(item_id, encoding, payload, body):
    """The work. body: the payload as JSON, parsed by psycopg2 (payload_json returns
    json for JSON items, NULL for the rest); payload: always the bytes (a memoryview)."""
    kind = "bytes" if body is None else "json"
    given = type(payload if body is None else body).__name__
    with output:
        print("consumed %d %s %s %s" % (item_id, kind, hashlib.md5(payload).hexdigest(), given), flush=True)


def consume_loop(loop):
    conn = pool.getconn()
    conn.autocommit = True  # each call is its own transaction: lease, then complete in the next
    client_id = "%s-%d" % (CLIENT_ID, loop)
    done = []  # handled, completed by the next call
    try:
        with conn.cursor() as cur:
            while not stopping.is_set():
                cur.execute(LEASE, (QUEUE, client_id, done, BATCH, WAIT))
                done, failed = [], []
                for item in cur.fetchall():
                    try:
                        handle(*item)
                        done.append(item[0])
                    except Exception as err:  # the item's failure, not the loop's
                        print("item %d: %s" % (item[0], err), file=sys.stderr)
                        failed.append(item[0])
                if failed:  # back to the queue in a minute (or to the dead queue after max_attempts)
                    retry_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
                    cur.execute("SELECT querator.queue_retry_batch(%s, %s, %s)", (QUEUE, failed, retry_at))
            # Stopping: the batch in hand is handled; complete it before leaving.
            if done:
                cur.execute("SELECT querator.queue_complete_batch(%s, %s)", (QUEUE, done))
    finally:
        pool.putconn(conn)


def main():
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    errors = []

    def run(loop):
        try:
            consume_loop(loop)
        except Exception as err:
            errors.append(err)
            print("%s-%d: %s" % (CLIENT_ID, loop, err), file=sys.stderr)
            stopping.set()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONSUMERS)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # short joins, so the main thread gets to run the signal handler
            t.join(0.2)
    pool.closeall()
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
