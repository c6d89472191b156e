# A faulty TCP server for `upcase check` tests: `accept()` outside the loop. It serves its first
# connection correctly (streaming, full Unicode), then exits. A check that opened a connection
# of its own first would use that one accept up and call the server silent; the card must show
# the lecture's client answered, then the server gone.
# Usage: python3 tcp_accept_once.py [PORT]   (0 picks a free port)
import codecs
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
server_socket.listen()
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

connection_socket, addr = server_socket.accept()
decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
while True:
    data = connection_socket.recv(4096)
    text = decoder.decode(data, final=not data)
    connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
    if not data:
        break
connection_socket.close()
server_socket.close()
