# A faulty TCP server for `upcase check` tests: correct, streaming, a thread per connection, but
# listen(1) and a 3 ms pause after each accept, so connections that arrive faster than it
# accepts find the backlog full (the kernel drops their SYNs; the client retries after 1 s).
# Usage: python3 tcp_small_backlog.py [PORT]   (0 picks a free port)
import codecs
import socket
import sys
import threading
import time


def serve(connection_socket):
    decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
    try:
        while True:
            data = connection_socket.recv(4096)
            text = decoder.decode(data, final=not data)
            connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
            if not data:
                break
    except OSError:
        pass
    connection_socket.close()


threading.stack_size(256 * 1024)
server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
server_socket.listen(1)
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=serve, args=(connection_socket,), daemon=True).start()
    time.sleep(0.003)
