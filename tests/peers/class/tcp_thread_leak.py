# Flaw: a thread per connection that never ends. When recv returns b'' (the client has finished)
# the handler thinks "nothing yet", sleeps a second and reads again, forever: its author added the
# sleep when the loop held a core at 100%. Each connection leaves a thread (and an open socket)
# behind for the life of the server, so a grader watching it should report threads that grow by
# one per connection, while the CPU stays idle; and, as the socket is never closed, "never closes
# the connection". Replies are right and arrive at once: full Unicode (str.upper), bytes that are
# not UTF-8 pass through (surrogateescape), SO_REUSEADDR.
# Usage: python3 tcp_thread_leak.py [PORT]   (default 12000)
import socket
import sys
import threading
import time


def upper_case(connection_socket):
    while True:
        data = connection_socket.recv(4096)
        if not data:
            time.sleep(1)
            continue
        text = data.decode('utf-8', 'surrogateescape')
        connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))


server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('localhost', server_port))
server_socket.listen(128)

print('The server is ready to receive', flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=upper_case, args=(connection_socket,), daemon=True).start()
