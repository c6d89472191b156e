# Flaw: answers one datagram, then exits. The lecture's UDP server without its while loop: the
# first request is answered correctly and the program ends with status 0, so every later request
# gets nothing (or an ICMP "port unreachable", which a connected client sees as "connection
# refused"). A grader should report that it exits after one datagram, not that it was never
# started. Otherwise the lecture's: a 2,048-byte buffer, .decode('utf-8') dies on invalid UTF-8.
# Usage: python3 udp_one_datagram.py [PORT]   (default 12000)
import socket
import sys

server_ip = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
buffer_size = 2048

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind((server_ip, server_port))

print('The server is ready to receive', flush=True)

message, client_address = server_socket.recvfrom(buffer_size)
modified_message = message.decode('utf-8').upper()
server_socket.sendto(modified_message.encode('utf-8'), client_address)
server_socket.close()
