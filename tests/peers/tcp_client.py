# The lecture's TCP client, as a peer for upcase's interop tests.
# Faithful on purpose: it never shuts down its sending side, reads the reply with a single recv
# of at most 1,024 bytes (a longer or late-arriving reply is cut), and .decode('utf-8') raises
# on invalid bytes. print() separates its two arguments with a space, hence two after the colon.
# Usage: python3 tcp_client.py [PORT]   (default 12000), then type a sentence.
import socket
import sys

server_name = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
buffer_size = 1024

client_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client_socket.connect((server_name, server_port))

sentence = input('Input lowercase sentence:')
client_socket.send(sentence.encode('utf-8'))

modified_sentence = client_socket.recv(buffer_size)
print('From Server: ', modified_sentence.decode('utf-8'))
client_socket.close()
