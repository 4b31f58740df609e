"""A querator producer with psycopg2: COUNT items to QUEUE, JSON documents and
binary blobs in turn, BATCH items per transaction. Connection settings come from
the PG* environment variables, as libpq reads them (PGHOST, PGPORT, PGDATABASE...).

psycopg2 writes a str parameter as a quoted literal with no type: each querator
name used here has one signature, so PostgreSQL gives it the type the name
declares (json for queue_produce_json). bytes go as bytea, a list of bytes as
bytea[]. No casts needed.

Prints "produced <id> <json|bytes> <md5 of the payload bytes>" for each item.
"""
import hashlib
import json
import os

import psycopg2

QUEUE = os.environ.get("QUEUE", "jobs")
COUNT = int(os.environ.get("COUNT", "1000"))
BATCH = int(os.environ.get("BATCH", "50"))
PRODUCER_NAME = os.environ.get("PRODUCER_NAME", "producer-%d" % os.getpid())


def md5(data):
    return hashlib.md5(data).hexdigest()


def produce_batch(conn, first, n):
    produced = []
    blobs = []
    with conn, conn.cursor() as cur:  # one transaction: all of the batch or none of it
        for i in range(first, first + n):
            if i % 2 == 0:
                # The JSON text as written here is what a consumer gets back, byte for byte.
                doc = json.dumps({"producer": PRODUCER_NAME, "n": i, "note": "café ✓", "lines": [i, {"qty": 2}]},
                                 ensure_ascii=False)
                cur.execute("SELECT querator.queue_produce_json(%s, %s)", (QUEUE, doc))
                produced.append((cur.fetchone()[0], "json", md5(doc.encode("utf-8"))))
            else:
                blobs.append(os.urandom(24 + i % 40))
        # Many items in one call: a list of bytes is a bytea[].
        cur.execute("SELECT querator.queue_produce_bytes_batch(%s, %s)", (QUEUE, blobs))
        ids = cur.fetchone()[0]
        produced += [(item_id, "bytes", md5(blob)) for item_id, blob in zip(ids, blobs)]
    for item_id, kind, digest in produced:  # after the commit: now they exist
        print("produced %d %s %s" % (item_id, kind, digest), flush=True)


def main():
    conn = psycopg2.connect("")  # "" = everything from PG* variables
    try:
        for first in range(0, COUNT, BATCH):
            produce_batch(conn, first, min(BATCH, COUNT - first))
    finally:
        conn.close()


if __name__ == "__main__":
    main()
