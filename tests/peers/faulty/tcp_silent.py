# A faulty TCP server for `upcase check` tests: accepts every connection and never answers.
# Usage: python3 tcp_silent.py [PORT]   (0 picks a free port)
import serving

server_socket = serving.listen_tcp()
held = []
while True:
    connection_socket, addr = server_socket.accept()
    held.append(connection_socket)
