#!/usr/bin/env python3
"""A loopback HTTP receiver for querator's webhook tests (standard library only).

Every request is appended to --log as one JSON line: time, method, path,
headers, body (UTF-8, or base64 when it is not). The path chooses the answer:

  /ok             200
  /fail           500
  /fail-first/N   500 while X-Querator-Attempt <= N, then 200
  /hang           no answer for 60 s (the client's timeout ends it)
  /slow/MS        200 after MS milliseconds
  /close          the connection is closed without an answer
  /status/N       status N

Once listening it writes its port to --port-file (when given).
"""
import argparse
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode(), "base64"
        record = {
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": {k: v for k, v in self.headers.items()},
            "body": text,
            "body_encoding": encoding,
        }
        with log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        self.answer()

    do_GET = do_POST

    def answer(self):
        parts = [p for p in self.path.split("/") if p]
        mode = parts[0] if parts else "ok"
        if mode == "hang":
            time.sleep(60)
            self.reply(200)
        elif mode == "close":
            self.close_connection = True
        elif mode == "fail":
            self.reply(500)
        elif mode == "fail-first":
            attempt = int(self.headers.get("X-Querator-Attempt") or 0)
            self.reply(500 if attempt <= int(parts[1]) else 200)
        elif mode == "slow":
            time.sleep(int(parts[1]) / 1000.0)
            self.reply(200)
        elif mode == "status":
            self.reply(int(parts[1]))
        else:
            self.reply(200)

    def reply(self, status):
        body = b"ok\n" if status < 300 else b"error\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    ThreadingHTTPServer.request_queue_size = 1024  # many concurrent connects: no SYN drops
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.log_path = args.log
    open(args.log, "a").close()
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        import os
        os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
