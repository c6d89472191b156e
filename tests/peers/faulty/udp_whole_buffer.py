# A faulty UDP server for `upcase check` tests: the Java student's `new String(packet.getData())`.
# Each datagram is received into a fresh 2,048-byte buffer, and the whole buffer, NUL bytes and
# all, is uppercased and sent back instead of the bytes received. Otherwise correct: full Unicode,
# invalid bytes passed through, datagrams from ports below 1024 ignored.
# Usage: python3 udp_whole_buffer.py [PORT]   (0 picks a free port)
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    buffer = bytearray(2048)
    received, client_address = server_socket.recvfrom_into(buffer)
    if client_address[1] < 1024:
        continue
    text = bytes(buffer).decode('utf-8', 'surrogateescape')  # the whole buffer, not buffer[:received]
    server_socket.sendto(text.upper().encode('utf-8', 'surrogateescape'), client_address)
