# A faulty TCP server for `upcase check` tests: correct, streaming, a thread per connection, for
# its first 20 connections; then it hangs: it never accepts again, though it keeps listening
# (so connects still succeed, into a backlog nobody reads).
# Usage: python3 tcp_hangs.py [PORT]   (0 picks a free port)
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


server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
server_socket.listen(1024)
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

for _ in range(20):
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=serve, args=(connection_socket,), daemon=True).start()
while True:
    time.sleep(3600)
