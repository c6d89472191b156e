# Flaw: dies on an empty connection. This is the lecture's TCP server plus a 'quit' command:
# sentence.split()[0] raises IndexError when a client connects and closes without sending
# anything (a port scanner, a health check, a grader's probe), or sends only spaces, and that
# ends the server. A grader should report: dies on an empty connection, with the traceback
# (IndexError: list index out of range, and this file's line). It keeps the lecture's own flaws
# too: one recv of at most 1,024 bytes (a longer message is cut), .decode('utf-8') dies on
# invalid UTF-8, one client at a time, no SO_REUSEADDR. (A message starting with the word quit
# stops it, as its author intended.)
# Usage: python3 tcp_dies_on_empty.py [PORT]   (default 12000)
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
    sentence = connection_socket.recv(buffer_size).decode('utf-8')
    if sentence.split()[0] == 'quit':
        connection_socket.close()
        break
    modified_sentence = sentence.upper()
    connection_socket.send(modified_sentence.encode('utf-8'))
    connection_socket.close()
