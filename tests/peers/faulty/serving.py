# What the faulty servers share, so that each of their files shows only its fault: where they
# listen (127.0.0.1, the port from the command line, 0 for a free one), the ready line the tests
# wait for, and a correct uppercasing of a TCP stream to which the faults are added.
# Not a server itself; imported by the scripts beside it.
import codecs
import socket
import socketserver
import sys
import threading


def port():
    return int(sys.argv[1]) if len(sys.argv) > 1 else 12000


def announce(bound_port):
    print('The server is ready to receive on port', bound_port, flush=True)


def listen_tcp(backlog=None):
    """A TCP socket listening on 127.0.0.1 with `backlog` (Python's default if None), announced."""
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server_socket.bind(('127.0.0.1', port()))
    if backlog is None:
        server_socket.listen()
    else:
        server_socket.listen(backlog)
    announce(server_socket.getsockname()[1])
    return server_socket


def bind_udp():
    """A UDP socket bound to 127.0.0.1, announced."""
    server_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server_socket.bind(('127.0.0.1', port()))
    announce(server_socket.getsockname()[1])
    return server_socket


def uppercase_until_half_close(connection_socket):
    """Answers as data arrives, a character split across reads included, until the client's
    half-close; invalid UTF-8 passes through unchanged."""
    decoder = codecs.getincrementaldecoder('utf-8')('surrogateescape')
    while True:
        data = connection_socket.recv(4096)
        text = decoder.decode(data, final=not data)
        connection_socket.sendall(text.upper().encode('utf-8', 'surrogateescape'))
        if not data:
            break


def serve_connection(connection_socket):
    """A correct connection: uppercased until the half-close, then closed (a reset ends it too)."""
    try:
        uppercase_until_half_close(connection_socket)
    except OSError:
        pass
    connection_socket.close()


def serve_threads_forever(handler):
    """Serves `handler` (a socketserver.BaseRequestHandler) with a thread per connection and a
    backlog of 1,024 (Python's 5, or 128, overflow in the checks' bursts); small thread stacks,
    as the crowd probes open 1,000 connections at once."""
    threading.stack_size(256 * 1024)
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.request_queue_size = 1024
    server = socketserver.ThreadingTCPServer(('127.0.0.1', port()), handler)
    server.daemon_threads = True
    announce(server.server_address[1])
    server.serve_forever()
