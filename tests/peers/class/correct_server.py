# Correct, for contrast: TCP and UDP on the same port. A grader should report no flaw.
# TCP: a thread per connection that answers each piece as it arrives (so a client that never
# half-closes, like the lecture's, gets its reply), holds back a character split between two
# reads, closes when the client has finished, and never spins. UDP: a 64 KiB buffer, so no
# datagram is cut. Text: str.upper() (ß becomes SS), and bytes that are not UTF-8 pass through
# unchanged (surrogateescape). SO_REUSEADDR, so it can be restarted at once.
# Usage: python3 correct_server.py [PORT]   (default 12000)
import codecs
import socket
import sys
import threading

server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000


def upper_case(connection_socket):
    decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
    with connection_socket:
        while True:
            data = connection_socket.recv(4096)
            text = decoder.decode(data, final=not data)
            connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
            if not data:
                break


def serve_udp(udp_socket):
    while True:
        message, client_address = udp_socket.recvfrom(65535)
        text = message.decode('utf-8', 'surrogateescape')
        udp_socket.sendto(text.upper().encode('utf-8', 'surrogateescape'), client_address)


tcp_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp_socket.bind(('localhost', server_port))
tcp_socket.listen(128)

udp_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_socket.bind(('localhost', server_port))
threading.Thread(target=serve_udp, args=(udp_socket,), daemon=True).start()

print('The server is ready to receive', flush=True)

while True:
    connection_socket, addr = tcp_socket.accept()
    threading.Thread(target=upper_case, args=(connection_socket,), daemon=True).start()
