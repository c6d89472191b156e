# A faulty TCP server for `upcase check` tests: the Java student's `in.readLine()`. A thread per
# connection reads one line (up to a newline, or the client's half-close), answers its
# uppercase, and closes. The lecture's client sends no newline and never half-closes, so it waits
# forever; a message of several lines gets its first line back. Otherwise correct: full Unicode,
# invalid bytes passed through, any length.
# Usage: python3 tcp_first_line.py [PORT]   (0 picks a free port)
import socketserver
import sys


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        line = self.rfile.readline()
        text = line.decode('utf-8', 'surrogateescape')
        self.wfile.write(text.upper().encode('utf-8', 'surrogateescape'))


socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.request_queue_size = 1024
server = socketserver.ThreadingTCPServer(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000), Handler)
server.daemon_threads = True
print('The server is ready to receive on port', server.server_address[1], flush=True)
server.serve_forever()
