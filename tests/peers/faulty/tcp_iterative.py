# A faulty TCP server for `upcase check` tests: correct replies, streamed as data arrives, but one
# connection at a time (a silent client blocks everyone else), like the lecture's first server.
# Usage: python3 tcp_iterative.py [PORT]   (0 picks a free port)
import codecs
import socket
import sys

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
server_socket.listen()
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
    try:
        while True:
            data = connection_socket.recv(4096)
            text = decoder.decode(data, final=not data)
            connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
            if not data:
                break
    except OSError:
        pass
    connection_socket.close()
