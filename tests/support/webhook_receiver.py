"""A webhook receiver for the Rust tests, verifying every delivery with the
Standard Webhooks project's own Python package (not our code).

    webhook_receiver.py SECRET LOG_FILE [PORT]

Listens on 127.0.0.1 (PORT, or a free port; printed as "ready PORT"), and answers by
path:
  /ok        verify, record, 200
  /flaky     the first delivery of each webhook-id 503, later ones as /ok
  /slow      sleep 30 s before answering (the sender must give up first)
  /redirect  302 to /ok (the sender must not follow it)
  /reject    400
Each delivery is one JSON line in LOG_FILE: path, the three headers, whether
standardwebhooks verified it, every header name and value, and the body.
Exits by itself when the process that started it goes away.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

secret, log_file = sys.argv[1], sys.argv[2]
verifier = Webhook(secret)
seen_flaky = set()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            verifier.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        entry = {
            "path": self.path,
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "verified": verified,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
        }
        with lock:
            with open(log_file, "a") as log:
                log.write(json.dumps(entry) + "\n")
            first_flaky = self.path == "/flaky" and entry["id"] not in seen_flaky
            if first_flaky:
                seen_flaky.add(entry["id"])
        if self.path == "/slow":
            time.sleep(30)
            self.answer(200)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("location", "/ok")
            self.send_header("content-length", "0")
            self.end_headers()
        elif self.path == "/reject":
            self.answer(400)
        elif first_flaky:
            self.answer(503)
        else:
            self.answer(200 if verified else 401)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
print(f"ready {server.server_address[1]}", flush=True)
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(0.3)
