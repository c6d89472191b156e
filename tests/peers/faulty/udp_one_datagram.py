# A faulty UDP server for `upcase check` tests: answers one datagram correctly, then exits (the
# receive is not in a loop). A check that sends a datagram of its own first would find the port
# closed and call the server absent; the card must show the lecture's client answered, then the
# server gone.
# Usage: python3 udp_one_datagram.py [PORT]   (0 picks a free port)
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

message, client_address = server_socket.recvfrom(65535)
server_socket.sendto(message.decode('utf-8').upper().encode('utf-8'), client_address)
server_socket.close()
