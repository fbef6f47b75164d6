"""A tiny HTTP server run as a sandbox pod: answers its pod name; /ready honours a flag file.

Usage: python pod_server.py [--marker=TOKEN]   (the marker only tags the process for tests)
GET /       -> 200, body: the pod name (HOSTNAME)
GET /ready  -> 503 while the file named by env NOT_READY_FLAG exists, else 200
"""

import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ready":
            flag = os.environ.get("NOT_READY_FLAG")
            status, body = (503, b"not ready") if flag and os.path.exists(flag) else (200, b"ok")
        else:
            status, body = 200, os.environ["HOSTNAME"].encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
