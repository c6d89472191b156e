# Correct UDP client, for contrast: waits at most a second for the reply, resends the request up
# to 5 times, ignores datagrams from anyone but the server, and says so (exit status 1) if no reply
# comes. The reply is written as the bytes received, so bytes that are not UTF-8 cannot crash it;
# a 65,535-byte buffer reads any datagram whole. A grader should report no flaw.
# Usage: python3 udp_client_retries.py [PORT]   (default 12000), then type a sentence.
import socket
import sys

server_name = 'localhost'
server_port = int(sys.argv[1]) if len(sys.argv) > 1 else 12000
tries = 5
timeout = 1.0

print('Input lowercase sentence:', end='', flush=True)
message = sys.stdin.buffer.readline().rstrip(b'\n')

server_address = socket.getaddrinfo(server_name, server_port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
client_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client_socket.settimeout(timeout)
for attempt in range(tries):
    client_socket.sendto(message, server_address)
    try:
        while True:
            reply, sender = client_socket.recvfrom(65535)
            if sender == server_address:
                break
    except socket.timeout:
        continue
    sys.stdout.buffer.write(reply + b'\n')
    sys.exit(0)
sys.exit(f'no reply from {server_name}:{server_port} after {tries} tries, {timeout:g} s each')
