# A faulty TCP server for `upcase check` tests: correct, streaming, a thread per connection, for
# its first 20 connections; then it hangs: it never accepts again, though it keeps listening
# (so connects still succeed, into a backlog nobody reads).
# Usage: python3 tcp_hangs.py [PORT]   (0 picks a free port)
import threading
import time

import serving

server_socket = serving.listen_tcp(1024)
for _ in range(20):
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=serving.serve_connection, args=(connection_socket,), daemon=True).start()
while True:
    time.sleep(3600)
