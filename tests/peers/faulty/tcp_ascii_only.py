# A faulty TCP server for `upcase check` tests: concurrent and streaming, but bytes.upper()
# uppercases ASCII only (ß, Greek and Cyrillic come back unchanged).
# Usage: python3 tcp_ascii_only.py [PORT]   (0 picks a free port)
import socketserver
import sys


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                break
            self.request.sendall(data.upper())


socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.request_queue_size = 1024  # Python's 5 (and 128) overflow in a burst.
server = socketserver.ThreadingTCPServer(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000), Handler)
server.daemon_threads = True
print('The server is ready to receive on port', server.server_address[1], flush=True)
server.serve_forever()
