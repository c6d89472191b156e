# Flaw: never closes a connection. The author keeps every client in a list (for a "who is
# online" feature that never got written), so the socket object stays alive and is never closed:
# replies are right and arrive at once, but a client that half-closes and reads until the end
# waits forever, and each connection keeps a file descriptor open for the life of the server. A
# grader should report "never closes the connection" (and, watching it, open descriptors that
# grow per connection). Otherwise sound: a thread per connection that ends at the client's EOF,
# full Unicode (str.upper), a character split between reads is held back, bytes that are not
# UTF-8 pass through (surrogateescape), SO_REUSEADDR.
# Usage: python3 tcp_never_closes.py [PORT]   (default 12000)
import codecs
import socket
import sys
import threading

clients = []


def upper_case(connection_socket):
    clients.append(connection_socket)
    decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
    while True:
        data = connection_socket.recv(4096)
        text = decoder.decode(data, final=not data)
        connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
        if not data:
            break


server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('localhost', server_port))
server_socket.listen(128)

print('The server is ready to receive', flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=upper_case, args=(connection_socket,), daemon=True).start()
