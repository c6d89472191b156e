# A faulty TCP server for `upcase check` tests: concurrent, streaming, correct replies, but each
# reply waits 0.2 s, so every probe takes long and a short --budget runs out.
# Usage: python3 tcp_slow.py [PORT]   (0 picks a free port)
import codecs
import socketserver
import time

import serving


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


serving.serve_threads_forever(Handler)
