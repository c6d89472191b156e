# The lecture's UDP client, as a peer for upcase's interop tests.
# Faithful on purpose: it waits for the reply with no timeout (forever, if it was lost), reads
# at most 2,048 bytes of it, and .decode('utf-8') raises on invalid bytes.
# Usage: python3 udp_client.py [PORT]   (default 12000), then type a sentence.
import socket
import sys

server_name = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
buffer_size = 2048

client_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
message = input('Input lowercase sentence:')

client_socket.sendto(message.encode('utf-8'), (server_name, server_port))
modified_message, server_address = client_socket.recvfrom(buffer_size)
print(modified_message.decode('utf-8'))
client_socket.close()
