#!/usr/bin/env python3
"""HTTP load for test/t/094_http_api.pl, through Python's standard library.

usage: http_load.py PORT KEY QUEUE SECONDS CLIENTS

Each client keeps one HTTP connection (http.client, keep-alive) and loops:
produce one item whose payload is a unique token, lease up to 5 items,
complete them. A failed connection (the server killed) is opened again and
the loop goes on. Prints a JSON summary: the tokens whose produce was
acknowledged (200), those whose complete was sent, those whose complete was
acknowledged, the count of each status and of connection failures.
"""
import base64
import http.client
import json
import sys
import threading
import time

port, key, queue, seconds, clients = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
lock = threading.Lock()
summary = {"produced": [], "complete_sent": [], "completed": [], "statuses": {}, "connection_failures": 0}


def record(name, values):
    with lock:
        summary[name].extend(values)


class Client:
    def __init__(self):
        self.conn = None

    def call(self, path, body):
        """(status, reply) or (None, None) when the connection failed."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
            self.conn.request("POST", path, json.dumps(body), headers)
            response = self.conn.getresponse()
            reply = json.loads(response.read() or b"{}")
            status = response.status
        except (OSError, http.client.HTTPException, ValueError):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            with lock:
                summary["connection_failures"] += 1
            time.sleep(0.05)
            return None, None
        with lock:
            summary["statuses"][str(status)] = summary["statuses"].get(str(status), 0) + 1
        return status, reply


def run(number, deadline):
    client = Client()
    n = 0
    while time.time() < deadline:
        n += 1
        token = "%d-%d" % (number, n)
        status, _ = client.call("/v1/queue.produce", {"queue_name": queue, "items": [{"utf8": token}]})
        if status == 200:
            record("produced", [token])
        status, reply = client.call("/v1/queue.lease", {"queue_name": queue, "batch_size": 5,
                                                        "client_id": "load-%d" % number, "request_timeout": "1s"})
        if status != 200:
            continue
        ids = [item["id"] for item in reply["items"]]
        tokens = [base64.b64decode(item["bytes"]).decode() for item in reply["items"]]
        record("complete_sent", tokens)
        status, _ = client.call("/v1/queue.complete", {"queue_name": queue, "ids": ids})
        if status == 200:
            record("completed", tokens)


deadline = time.time() + seconds
threads = [threading.Thread(target=run, args=(i, deadline)) for i in range(clients)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(summary))
