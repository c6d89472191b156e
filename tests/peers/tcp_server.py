# The lecture's iterative TCP server, as a peer for upcase's interop tests and benchmarks.
# Faithful on purpose: one connection at a time, a single recv of at most 1,024 bytes per
# connection (the rest of a longer message is never read), and .decode('utf-8') raises on
# invalid input, which ends the server.
# Usage: python3 tcp_server.py [PORT]   (default 12000; 0 picks a free port)
import socket
import sys

server_ip = '127.0.0.1'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
buffer_size = 1024

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.bind((server_ip, server_port))
bound_port = server_socket.getsockname()[1]

server_socket.listen()

print('The server is ready to receive on port', bound_port, flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    sentence = connection_socket.recv(buffer_size).decode('utf-8')
    modified_sentence = sentence.upper()
    connection_socket.send(modified_sentence.encode('utf-8'))
    connection_socket.close()
