# A faulty TCP server for `upcase check` tests: concurrent, streaming, correct replies, but each
# reply waits 0.2 s, so every probe takes long and a short --budget runs out.
# Usage: python3 tcp_slow.py [PORT]   (0 picks a free port)
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
            if text:
                time.sleep(0.2)
            self.request.sendall(text.upper().encode('utf-8', 'surrogateescape'))
            if not data:
                break


threading.stack_size(256 * 1024)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.request_queue_size = 1024
server = socketserver.ThreadingTCPServer(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000), Handler)
server.daemon_threads = True
print('The server is ready to receive on port', server.server_address[1], flush=True)
server.serve_forever()
