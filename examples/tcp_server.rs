//! The lecture's "TCP server" slide, in Rust with plain `std::net`: an iterative server, which
//! serves one connection to the end before it accepts the next.
//!
//! Run it with `cargo run --example tcp_server [ADDR]` (default `localhost:12000`; `127.0.0.1:0`
//! picks a free port), then `cargo run --example tcp_client` in another terminal.
//!
//! Where it differs from the slide, and why:
//! - TCP is a byte stream, not messages: one `recv(1024)` may return part of a sentence, and the
//!   slide cuts anything longer. This server reads and writes back in a loop until the client
//!   shuts down its side, so nothing is ever cut. A client that sends once, reads once and
//!   closes (the slide's client) still works: its close ends the loop.
//! - It uppercases with `upcase::transform`, so invalid UTF-8 cannot crash it.
//! - An error with one client is printed to stderr and the server accepts the next one.
//!
//! Being iterative, it keeps the slide's real limitation: while one client is connected, every
//! other client waits. `tcp_server_threaded` is the fix.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};

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
        if let Err(e) = connection.and_then(upper_case) {
            eprintln!("client failed: {e}");
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
