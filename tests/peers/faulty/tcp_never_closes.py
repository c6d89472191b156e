# A faulty TCP server for `upcase check` tests: concurrent, streaming, correct replies, but after
# the client's half-close it keeps the connection open (for 3 s, "forever" to a client waiting
# with a shorter timeout) instead of closing it.
# Usage: python3 tcp_never_closes.py [PORT]   (0 picks a free port)
import socketserver
import time

import serving


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        serving.uppercase_until_half_close(self.request)
        time.sleep(3)


serving.serve_threads_forever(Handler)
