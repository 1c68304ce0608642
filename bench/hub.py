#!/usr/bin/env python3
"""A logout hub double for benchmarks: answers like Knowledge Commons Profiles after a delay.

usage: hub.py PORT DELAY_SECONDS [CERT_PEM KEY_PEM]   (with a certificate: HTTPS)
"""
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hub(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        time.sleep(float(sys.argv[2]))
        user = body.get("user_name", "")
        answer = json.dumps({
            "message": "Action successfully triggered.",
            "data": {"user": {"user": user, "url": f"/profiles/{user}/"},
                     "user_agent": body.get("user_agent", ""), "app": ["Profiles"]},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hub)
if len(sys.argv) > 4:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
