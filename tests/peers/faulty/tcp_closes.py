# A faulty TCP server for `upcase check` tests: accepts every connection and closes it without
# a reply.
# Usage: python3 tcp_closes.py [PORT]   (0 picks a free port)
import serving

server_socket = serving.listen_tcp()
while True:
    connection_socket, addr = server_socket.accept()
    connection_socket.close()
