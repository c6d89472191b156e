# A faulty UDP server for `upcase check` tests: a full-size buffer and full Unicode uppercasing,
# but .decode('utf-8') raises on invalid input, which ends the server.
# Usage: python3 udp_dies_on_invalid.py [PORT]   (0 picks a free port)
import serving

server_socket = serving.bind_udp()
while True:
    message, client_address = server_socket.recvfrom(65535)
    server_socket.sendto(message.decode('utf-8').upper().encode('utf-8'), client_address)
