# A faulty UDP server for `upcase check` tests: reads every datagram and never answers.
# Usage: python3 udp_silent.py [PORT]   (0 picks a free port)
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    server_socket.recvfrom(65535)
