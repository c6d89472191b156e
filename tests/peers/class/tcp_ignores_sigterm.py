# Flaw: does not stop on SIGTERM. Its author wanted a graceful shutdown: the SIGTERM handler only
# sets a flag, which the loop checks after accept() returns, so a server with no client coming
# keeps running (Python restarts the interrupted accept). `kill PID` does nothing visible; only
# the next connection, or SIGKILL, ends it. A grader should report that it ignored SIGTERM and had
# to be killed. Otherwise sound: it answers each piece as it arrives, full Unicode (str.upper),
# a character split between reads is held back, bytes that are not UTF-8 pass through
# (surrogateescape), closes each connection, SO_REUSEADDR; one client at a time.
# Usage: python3 tcp_ignores_sigterm.py [PORT]   (default 12000)
import codecs
import signal
import socket
import sys

running = True


def stop_gracefully(signum, frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop_gracefully)

server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000

server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server_socket.bind(('localhost', server_port))
server_socket.listen()

print('The server is ready to receive', flush=True)

while running:
    connection_socket, addr = server_socket.accept()
    decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
    with connection_socket:
        while True:
            data = connection_socket.recv(4096)
            text = decoder.decode(data, final=not data)
            connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
            if not data:
                break
