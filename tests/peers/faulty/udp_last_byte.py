# A faulty UDP server for `upcase check` tests: the C student's `for (i = 0; i < n - 1; i++)`,
# written to skip a newline the lecture's client never sends: the last byte of every datagram
# comes back as it was. Otherwise correct: full Unicode (on every byte but the last), invalid
# bytes passed through, datagrams from ports below 1024 ignored.
# Usage: python3 udp_last_byte.py [PORT]   (0 picks a free port)
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    message, client_address = server_socket.recvfrom(65535)
    if client_address[1] < 1024:
        continue
    head = message[:-1].decode('utf-8', 'surrogateescape').upper().encode('utf-8', 'surrogateescape')
    server_socket.sendto(head + message[-1:], client_address)
