# A faulty TCP server for `upcase check` tests: accepts every connection and closes it without
# a reply.
# Usage: python3 tcp_closes.py [PORT]   (0 picks a free port)
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
server_socket.listen()
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    connection_socket.close()
