# Correct TCP client, for contrast: sends the sentence, half-closes, and reads until the server
# closes, so a reply in several segments or of any length arrives whole; every wait is bounded (5
# s), and a refused connection or a silent server is reported in one line with exit status 1. The
# reply is written as the bytes received, so bytes that are not UTF-8 cannot crash it. A grader
# should report no flaw.
# Usage: python3 tcp_client_reads_all.py [PORT]   (default 12000), then type a sentence.
import socket
import sys

server_name = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000

print('Input lowercase sentence:', end='', flush=True)
sentence = sys.stdin.buffer.readline().rstrip(b'\n')

try:
    client_socket = socket.create_connection((server_name, server_port), timeout=5)
    client_socket.sendall(sentence)
    client_socket.shutdown(socket.SHUT_WR)
    reply = b''
    while True:
        chunk = client_socket.recv(4096)
        if not chunk:
            break
        reply += chunk
    client_socket.close()
except OSError as error:
    sys.exit(f'cannot get a reply from {server_name}:{server_port}: {error}')
sys.stdout.buffer.write(b'From Server: ' + reply + b'\n')
