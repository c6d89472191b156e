//! The lecture's "UDP server" slide, in Rust with plain `std::net`.
//!
//! Run it with `cargo run --example udp_server [ADDR]` (default `localhost:12000`; `127.0.0.1:0`
//! picks a free port), then `cargo run --example udp_client` in another terminal.
//!
//! Where it differs from the slide, and why:
//! - It reads into a 65,536-byte buffer, larger than any UDP payload. The slide's 2,048 bytes
//!   silently cut a longer datagram; this never does.
//! - It uppercases bytes with `upcase::transform`, not by decoding: the slide's
//!   `.decode('utf-8')` raises on an invalid byte and that one datagram kills the server.
//! - An error with one client is printed to stderr and the server goes on to the next datagram.
//! - It prints the address it really bound, so port 0 (any free port) is usable.

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};

use upcase::transform::{uppercase, Encoding};

/// Larger than the biggest UDP payload (65,507 bytes over IPv4), so a datagram is never cut.
const BUFFER_SIZE: usize = 65_536;

fn main() -> io::Result<()> {
    let server_address = std::env::args().nth(1).unwrap_or_else(|| "localhost:12000".to_owned());
    // The slide's socket is AF_INET, so `localhost` means 127.0.0.1 here too, as for its clients.
    let server_address: SocketAddr =
        server_address.to_socket_addrs()?.min_by_key(SocketAddr::is_ipv6).ok_or(io::ErrorKind::NotFound)?;
    let server_socket = UdpSocket::bind(server_address)?;

    println!("The server is ready to receive on {}", server_socket.local_addr()?);
    // Whoever started us (a script, a test) may be waiting for that line through a pipe.
    io::stdout().flush()?;

    let mut message = vec![0; BUFFER_SIZE];
    loop {
        let (len, client_address) = match server_socket.recv_from(&mut message) {
            Ok(received) => received,
            Err(e) => {
                eprintln!("cannot receive: {e}");
                continue;
            }
        };
        // One datagram is one whole message, so the whole-message form of the transform fits.
        let modified_message = uppercase(message.get(..len).unwrap_or_default(), Encoding::Utf8);
        // Uppercasing can lengthen text (ß → SS) past what one datagram holds; then this fails,
        // and that client gets no reply, but the server carries on.
        if let Err(e) = server_socket.send_to(&modified_message, client_address) {
            eprintln!("cannot reply to {client_address}: {e}");
        }
    }
}
