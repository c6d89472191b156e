# A faulty TCP server for `upcase check` tests: concurrent and streaming, but bytes.upper()
# uppercases ASCII only (ß, Greek and Cyrillic come back unchanged).
# Usage: python3 tcp_ascii_only.py [PORT]   (0 picks a free port)
import socketserver

import serving


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                break
            self.request.sendall(data.upper())


serving.serve_threads_forever(Handler)
