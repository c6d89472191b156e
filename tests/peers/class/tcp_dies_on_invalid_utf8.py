# Flaw: dies on bytes that are not UTF-8. Each piece is decoded with .decode('utf-8') and no
# errors= argument, so invalid bytes raise UnicodeDecodeError, which ends the whole server (it
# serves one connection at a time, in the main thread). A character split between two reads
# raises the same way, so a grader should report: dies on invalid UTF-8, and dies on a character
# split across segments, both with the traceback (UnicodeDecodeError, and this file's line).
# Otherwise sound: it answers each piece as it arrives and closes when the client is done; like
# most students' servers it does not set SO_REUSEADDR (a restart right after it served a client
# fails with "Address already in use" for about a minute).
# Usage: python3 tcp_dies_on_invalid_utf8.py [PORT]   (default 12000)
import socket
import sys

server_ip = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
buffer_size = 1024

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.bind((server_ip, server_port))
server_socket.listen()

print('The server is ready to receive', flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    while True:
        data = connection_socket.recv(buffer_size)
        if not data:
            break
        sentence = data.decode('utf-8')
        connection_socket.send(sentence.upper().encode('utf-8'))
    connection_socket.close()
