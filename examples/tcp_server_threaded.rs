//! The lecture's "Multithreaded TCP server" slide, in Rust with plain `std::net`: a thread per
//! connection, so a slow or silent client no longer holds up the others.
//!
//! Run it with `cargo run --example tcp_server_threaded [ADDR]` (default `localhost:12000`;
//! `127.0.0.1:0` picks a free port), then `cargo run --example tcp_client` in another terminal.
//!
//! Where it differs from the slide, and why (as in `tcp_server`):
//! - It reads and writes back in a loop until the client shuts down its side, where the slide
//!   reads once (1,024 bytes) and cuts anything longer.
//! - It uppercases with `upcase::transform`, so invalid UTF-8 cannot crash a thread.
//! - An error with one client is printed to stderr; the server and other clients go on.
//!
//! Like the slide it starts a thread for every connection, with no limit; a real server caps
//! them (see `upcase serve --model threaded --max-threads`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;

use upcase::transform::{Encoding, Uppercaser};

fn main() -> io::Result<()> {
    let server_address = std::env::args().nth(1).unwrap_or_else(|| "localhost:12000".to_owned());
    // The slide's socket is AF_INET, so `localhost` means 127.0.0.1 here too, as for its clients.
    let server_address: SocketAddr =
        server_address.to_socket_addrs()?.min_by_key(SocketAddr::is_ipv6).ok_or(io::ErrorKind::NotFound)?;
    let server_socket = TcpListener::bind(server_address)?;

    println!("The server is ready to receive on {}", server_socket.local_addr()?);
    // Whoever started us (a script, a test) may be waiting for that line through a pipe.
    io::stdout().flush()?;

    for connection in server_socket.incoming() {
        match connection {
            Ok(connection_socket) => {
                thread::spawn(move || {
                    if let Err(e) = upper_case(connection_socket) {
                        eprintln!("client failed: {e}");
                    }
                });
            }
            Err(e) => eprintln!("cannot accept: {e}"),
        }
    }
    Ok(())
}

/// Uppercases everything the client sends until it shuts down its side, then closes.
fn upper_case(mut connection_socket: TcpStream) -> io::Result<()> {
    // Not `str::to_uppercase`: that needs valid UTF-8, but a client may send any bytes (which
    // must pass through unchanged), and a read may end in the middle of a multibyte character.
    // `Uppercaser` holds such a partial character back until the rest of it arrives.
    let mut uppercaser = Uppercaser::new(Encoding::Utf8);
    let mut sentence = vec![0; 16 * 1024];
    let mut modified_sentence = Vec::new();
    loop {
        let len = connection_socket.read(&mut sentence)?;
        modified_sentence.clear();
        if len == 0 {
            // End of stream: pass on whatever partial character is left, as it came.
            uppercaser.finish(&mut modified_sentence);
            return connection_socket.write_all(&modified_sentence);
        }
        uppercaser.push(sentence.get(..len).unwrap_or_default(), &mut modified_sentence);
        connection_socket.write_all(&modified_sentence)?;
    }
}
