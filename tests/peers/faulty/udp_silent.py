# A faulty UDP server for `upcase check` tests: reads every datagram and never answers.
# Usage: python3 udp_silent.py [PORT]   (0 picks a free port)
import serving

server_socket = serving.bind_udp()
while True:
    server_socket.recvfrom(65535)
