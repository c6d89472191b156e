# The lecture's UDP server, as a peer for upcase's interop tests and benchmarks.
# Faithful on purpose: one recvfrom of at most 2,048 bytes (a longer datagram is cut), and
# .decode('utf-8') raises on invalid input, which ends the server.
# Usage: python3 udp_server.py [PORT]   (default 12000; 0 picks a free port)
import socket
import sys

server_ip = '127.0.0.1'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
buffer_size = 2048

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind((server_ip, server_port))
bound_port = server_socket.getsockname()[1]

print('The server is ready to receive on port', bound_port, flush=True)

while True:
    message, client_address = server_socket.recvfrom(buffer_size)
    modified_message = message.decode('utf-8').upper()
    server_socket.sendto(modified_message.encode('utf-8'), client_address)
