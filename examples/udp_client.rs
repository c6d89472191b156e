//! The lecture's "UDP client" slide, in Rust with plain `std::net`.
//!
//! Run it with `cargo run --example udp_client [SERVER]` (default `localhost:12000`) while
//! `cargo run --example udp_server` runs, and type a sentence at the prompt.
//!
//! Where it differs from the slide, and why:
//! - UDP may lose the request or the reply, and the slide's `recvfrom` would then wait forever.
//!   This client waits one second, sends again, and gives up with an error after three tries.
//! - It `connect`s its socket to the server. That sends nothing (UDP has no connection); it
//!   makes the kernel drop datagrams from anyone else and report "connection refused" when no
//!   server is listening, instead of another silent wait.
//! - The reply buffer holds any datagram (65,536 bytes), where the slide's 2,048 would cut it.
//! - The reply is printed as the bytes it is, even if they are not valid UTF-8.

use std::io::{self, BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(1);
const ATTEMPTS: u32 = 3;

fn main() -> io::Result<()> {
    let server_address = std::env::args().nth(1).unwrap_or_else(|| "localhost:12000".to_owned());
    // The slide's socket is AF_INET, so `localhost` means 127.0.0.1 here too, as for its server.
    let server_address: SocketAddr =
        server_address.to_socket_addrs()?.min_by_key(SocketAddr::is_ipv6).ok_or(io::ErrorKind::NotFound)?;
    let any_address: IpAddr =
        if server_address.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let client_socket = UdpSocket::bind((any_address, 0))?;
    client_socket.connect(server_address)?;
    client_socket.set_read_timeout(Some(TIMEOUT))?;

    // Like Python's input(): the prompt stays on the line the user types on.
    print!("Input lowercase sentence:");
    io::stdout().flush()?;
    let mut message = String::new();
    io::stdin().lock().read_line(&mut message)?;
    let message = message.trim_end_matches(['\n', '\r']);

    let mut modified_message = vec![0; 65_536];
    for attempt in 1..=ATTEMPTS {
        client_socket.send(message.as_bytes())?;
        match client_socket.recv(&mut modified_message) {
            Ok(len) => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(modified_message.get(..len).unwrap_or_default())?;
                return writeln!(stdout);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                eprintln!("no reply within {TIMEOUT:?} (attempt {attempt} of {ATTEMPTS})");
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::TimedOut, format!("no reply from {server_address}")))
}
