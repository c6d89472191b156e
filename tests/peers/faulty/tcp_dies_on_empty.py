# A faulty TCP server for `upcase check` tests: correct for every client that sends something
# (answers as data arrives, full Unicode, invalid bytes passed through), one connection at a
# time; but a connection that sends nothing ends it, as `readLine()` returning null ends a Java
# server with a NullPointerException: here the first character of an empty message is an
# IndexError, and the server exits with a traceback.
# Usage: python3 tcp_dies_on_empty.py [PORT]   (0 picks a free port)
import codecs
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
server_socket.listen(1024)
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
    data = connection_socket.recv(4096)
    first_letter = data.decode('utf-8', 'surrogateescape')[0]  # IndexError when nothing came
    while data:
        connection_socket.sendall(decoder.decode(data).upper().encode('utf-8', 'surrogateescape'))
        data = connection_socket.recv(4096)
    connection_socket.sendall(decoder.decode(b'', final=True).upper().encode('utf-8', 'surrogateescape'))
    connection_socket.close()
