# Flaw (a client): crashes on a reply that is not UTF-8. It reads the whole reply (half-close,
# then recv until the server closes), then .decode('utf-8') raises UnicodeDecodeError on bytes
# that are not UTF-8, so the user gets a traceback and exit status 1 instead of the reply. A
# grader playing the server should report "crashes on a reply that is not UTF-8", with the
# traceback's last line (the fix: decode with errors='replace', or write the bytes as they are).
# Sound otherwise: replies in several segments and long replies are read whole.
# Usage: python3 tcp_client_crashes_on_invalid.py [PORT]   (default 12000), then type a sentence.
import socket
import sys

server_name = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000

client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client_socket.connect((server_name, server_port))

sentence = input('Input lowercase sentence:')
client_socket.sendall(sentence.encode('utf-8'))
client_socket.shutdown(socket.SHUT_WR)

reply = b''
while True:
    chunk = client_socket.recv(1024)
    if not chunk:
        break
    reply += chunk
print('From Server: ', reply.decode('utf-8'))
client_socket.close()
