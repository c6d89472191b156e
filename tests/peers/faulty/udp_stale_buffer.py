# A faulty UDP server for `upcase check` tests: the C student's `strlen(buf)`. One 2,048-byte
# buffer serves the server's whole life and is never cleared; each reply is the uppercase of the
# bytes received followed by whatever the buffer still holds up to its first NUL byte, so a short
# request after a longer one gets the end of the longer one back. Otherwise correct: full Unicode,
# invalid bytes passed through, datagrams from ports below 1024 ignored.
# Usage: python3 udp_stale_buffer.py [PORT]   (0 picks a free port)
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

buffer = bytearray(2048)  # static char buf[2048];
while True:
    received, client_address = server_socket.recvfrom_into(buffer)
    if client_address[1] < 1024:
        continue
    end = buffer.find(b'\0')  # strlen(buf)
    end = len(buffer) if end < 0 else end
    text = bytes(buffer[:received]).decode('utf-8', 'surrogateescape')
    reply = text.upper().encode('utf-8', 'surrogateescape') + bytes(buffer[received:max(end, received)])
    server_socket.sendto(reply, client_address)
