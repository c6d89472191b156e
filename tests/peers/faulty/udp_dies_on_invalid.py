# A faulty UDP server for `upcase check` tests: a full-size buffer and full Unicode uppercasing,
# but .decode('utf-8') raises on invalid input, which ends the server.
# Usage: python3 udp_dies_on_invalid.py [PORT]   (0 picks a free port)
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    message, client_address = server_socket.recvfrom(65535)
    server_socket.sendto(message.decode('utf-8').upper().encode('utf-8'), client_address)
