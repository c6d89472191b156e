# Flaw: answers only the first line. Each connection is read as lines (makefile + readline), the
# first line is answered and the connection closed; anything after the first newline is never
# read, so a grader should report "only the first line answered". A message without a newline is
# answered only when the client half-closes (readline waits for a newline or the end): the
# lecture's client, which sends no newline and never half-closes, waits forever for its reply, so
# a grader should report that too. Otherwise sound: a thread per connection, full Unicode
# (str.upper), bytes that are not UTF-8 pass through (surrogateescape), SO_REUSEADDR.
# Usage: python3 tcp_first_line_only.py [PORT]   (default 12000)
import socket
import sys
import threading


def answer_first_line(connection_socket):
    with connection_socket:
        reader = connection_socket.makefile('rb')
        line = reader.readline()
        text = line.decode('utf-8', 'surrogateescape')
        connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))


server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('localhost', server_port))
server_socket.listen(128)

print('The server is ready to receive', flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=answer_first_line, args=(connection_socket,), daemon=True).start()
