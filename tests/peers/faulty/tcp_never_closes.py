# A faulty TCP server for `upcase check` tests: concurrent, streaming, correct replies, but after
# the client's half-close it keeps the connection open (for 3 s, "forever" to a client waiting
# with a shorter timeout) instead of closing it.
# Usage: python3 tcp_never_closes.py [PORT]   (0 picks a free port)
import codecs
import socketserver
import sys
import threading
import time


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
        while True:
            data = self.request.recv(4096)
            text = decoder.decode(data, final=not data)
            self.request.sendall(text.upper().encode('utf-8', 'surrogateescape'))
            if not data:
                break
        time.sleep(3)


threading.stack_size(256 * 1024)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.request_queue_size = 1024
server = socketserver.ThreadingTCPServer(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000), Handler)
server.daemon_threads = True
print('The server is ready to receive on port', server.server_address[1], flush=True)
server.serve_forever()
