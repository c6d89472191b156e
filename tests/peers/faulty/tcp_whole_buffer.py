# A faulty TCP server for `upcase check` tests: the C student's `send(sock, buf, sizeof buf, 0)`.
# A thread per connection reads once into a 1,024-byte buffer and sends the whole buffer back,
# NUL bytes and all, uppercased (full Unicode; invalid bytes passed through), then closes.
# Usage: python3 tcp_whole_buffer.py [PORT]   (0 picks a free port)
import socket
import sys
import threading


def serve(connection_socket):
    buffer = bytearray(1024)
    try:
        connection_socket.recv_into(buffer)
        text = bytes(buffer).decode('utf-8', 'surrogateescape')  # sizeof buf, not the n received
        connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
    except OSError:
        pass
    connection_socket.close()


threading.stack_size(256 * 1024)
server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('127.0.0.1', int(sys.argv[1]) if len(sys.argv) > 1 else 12000))
server_socket.listen(1024)
print('The server is ready to receive on port', server_socket.getsockname()[1], flush=True)

while True:
    connection_socket, addr = server_socket.accept()
    threading.Thread(target=serve, args=(connection_socket,), daemon=True).start()
