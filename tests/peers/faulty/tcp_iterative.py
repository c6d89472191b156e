# A faulty TCP server for `upcase check` tests: correct replies, streamed as data arrives, but one
# connection at a time (a silent client blocks everyone else), like the lecture's first server.
# Usage: python3 tcp_iterative.py [PORT]   (0 picks a free port)
import serving

server_socket = serving.listen_tcp()
while True:
    connection_socket, addr = server_socket.accept()
    serving.serve_connection(connection_socket)
