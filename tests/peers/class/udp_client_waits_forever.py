# Flaw (a client): waits forever for a lost reply. Like the lecture's UDP client, it sends one
# datagram and calls recvfrom with no timeout: if the request or the reply is lost (UDP does not
# resend), it never returns and the user sees nothing, with no error. A grader playing the server
# should report "hangs on a lost datagram" within its bound (the fix: settimeout and resend a few
# times, then say the server did not answer). Sound otherwise: a 65,535-byte buffer, and bytes
# that are not UTF-8 are shown as U+FFFD instead of crashing (errors='replace').
# Usage: python3 udp_client_waits_forever.py [PORT]   (default 12000), then type a sentence.
import socket
import sys

server_name = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000

client_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
message = input('Input lowercase sentence:')

client_socket.sendto(message.encode('utf-8'), (server_name, server_port))
modified_message, server_address = client_socket.recvfrom(65535)
print(modified_message.decode('utf-8', errors='replace'))
client_socket.close()
