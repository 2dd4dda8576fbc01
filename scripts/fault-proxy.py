#!/usr/bin/env python3
"""A fault-injecting HTTP proxy: forwards every request to UPSTREAM, and at a configured rate
answers 503 SlowDown instead, resets the connection, or answers slowly. Seeded, so a run is
reproducible from its seed (given the same order of requests).

    fault-proxy.py PORT UPSTREAM_URL

Configured by the campaign through its own path (never forwarded):
    GET /_faults?rate=0.2&seed=7&kinds=slowdown,reset,slow   → faults on
    GET /_faults?rate=0                                      → pass-through
    GET /_faults/outage?seconds=2                            → every request reset for 2 s
    GET /_faults/stats                                       → {"requests": n, "slowdown": n, …}
"""

import http.client
import http.server
import json
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message><RequestId>fault</RequestId></Error>")


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rate, self.kinds, self.rng = 0.0, ["slowdown", "reset", "slow"], random.Random(0)
        self.stats = {"requests": 0, "slowdown": 0, "reset": 0, "slow": 0, "outage": 0}
        self.down_until = 0.0

    def configure(self, query):
        with self.lock:
            self.rate = float(query.get("rate", ["0"])[0])
            self.rng = random.Random(int(query.get("seed", ["0"])[0]))
            self.kinds = query.get("kinds", ["slowdown,reset,slow"])[0].split(",")
            self.stats = {"requests": 0, "slowdown": 0, "reset": 0, "slow": 0, "outage": 0}

    def draw(self):
        """The fault for the next request (None: forward it), and a delay for a slow answer."""
        with self.lock:
            self.stats["requests"] += 1
            if time.monotonic() < self.down_until:
                # The emulator "down": as if its process were restarting.
                self.stats["outage"] += 1
                return "reset", 0.0
            if self.rate <= 0 or self.rng.random() >= self.rate:
                return None, 0.0
            kind = self.rng.choice(self.kinds)
            self.stats[kind] += 1
            return kind, self.rng.uniform(0.2, 2.5)


FAULTS = Faults()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, body, content_type="application/xml"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        path = urllib.parse.urlsplit(self.path)
        if path.path == "/_faults/stats":
            with FAULTS.lock:
                return self.reply(200, json.dumps(FAULTS.stats).encode(), "application/json")
        if path.path == "/_faults/outage":
            seconds = float(urllib.parse.parse_qs(path.query).get("seconds", ["2"])[0])
            with FAULTS.lock:
                FAULTS.down_until = time.monotonic() + seconds
            return self.reply(200, b"{}", "application/json")
        if path.path == "/_faults":
            FAULTS.configure(urllib.parse.parse_qs(path.query))
            return self.reply(200, b"{}", "application/json")
        body = self.body()
        fault, delay = FAULTS.draw()
        if fault == "slowdown":
            return self.reply(503, SLOWDOWN)
        if fault == "reset":
            # An RST, not a clean close: the client sees a connection reset mid-request.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return None
        if fault == "slow":
            time.sleep(delay)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "content-length"}
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        # A HEAD answer keeps the object's length; anything else says what it carries.
        length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return None

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    port, upstream = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2])
    Proxy.upstream = upstream
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy)
    server.daemon_threads = True
    print(f"fault-proxy: 127.0.0.1:{port} -> {upstream.geturl()}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
