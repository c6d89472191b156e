# A faulty UDP server for `upcase check` tests: correct replies (full-size buffer, full Unicode,
# invalid bytes passed through, low source ports ignored), but it drops the first copy of every
# fourth request of the check's loss probe (datagrams starting "loss "), as a lossy path would,
# and answers the copies that retries resend. Other datagrams are never dropped, so only the
# loss row shows it.
# Usage: python3 udp_lossy.py [PORT]   (0 picks a free port)
import serving

server_socket = serving.bind_udp()
seen = set()
while True:
    message, client_address = server_socket.recvfrom(65535)
    if client_address[1] < 1024:
        continue
    if message.startswith(b'loss ') and message not in seen:
        seen.add(message)
        if len(seen) % 4 == 0:
            continue
    text = message.decode('utf-8', 'surrogateescape')
    server_socket.sendto(text.upper().encode('utf-8', 'surrogateescape'), client_address)
