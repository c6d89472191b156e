# A faulty TCP server for `upcase check` tests: correct, streaming, a thread per connection, but
# listen(1) and a 3 ms pause after each accept, so connections that arrive faster than it
# accepts find the backlog full (the kernel drops their SYNs; the client retries after 1 s).
# Usage: python3 tcp_small_backlog.py [PORT]   (0 picks a free port)
import threading
import time

import serving

threading.stack_size(256 * 1024)
server_socket = serving.listen_tcp(1)
while True:
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=serving.serve_connection, args=(connection_socket,), daemon=True).start()
    time.sleep(0.003)
