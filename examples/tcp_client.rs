//! The lecture's "TCP client" slide, in Rust with plain `std::net`.
//!
//! Run it with `cargo run --example tcp_client [SERVER]` (default `localhost:12000`) while
//! `cargo run --example tcp_server` runs, and type a sentence at the prompt.
//!
//! Where it differs from the slide, and why:
//! - TCP is a byte stream with no message boundaries, so one `recv(1024)` may return only part
//!   of the reply, and cuts any reply longer than 1,024 bytes. This client sends the sentence,
//!   shuts down its sending side (telling the server "that is all"), and reads until the server
//!   closes: the whole reply, however long.
//! - The reply is printed as the bytes it is, even if they are not valid UTF-8.
//!
//! It sends everything before reading anything, which is fine for a sentence. For megabytes,
//! send and receive at once (as `upcase send` does): otherwise both sides' buffers can fill up
//! and each waits for the other forever.

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};

fn main() -> io::Result<()> {
    let server_address = std::env::args().nth(1).unwrap_or_else(|| "localhost:12000".to_owned());
    // Tries each address `localhost` resolves to, IPv4 or IPv6, until one accepts.
    let mut client_socket = TcpStream::connect(server_address.as_str())?;

    // Like Python's input(): the prompt stays on the line the user types on.
    print!("Input lowercase sentence:");
    io::stdout().flush()?;
    let mut sentence = String::new();
    io::stdin().lock().read_line(&mut sentence)?;
    let sentence = sentence.trim_end_matches(['\n', '\r']);

    client_socket.write_all(sentence.as_bytes())?;
    client_socket.shutdown(Shutdown::Write)?;
    let mut modified_sentence = Vec::new();
    client_socket.read_to_end(&mut modified_sentence)?;

    // Python's print('From Server: ', reply) puts a space between its two arguments, so the
    // slide's output has two spaces after the colon; this prints the same.
    let mut stdout = io::stdout().lock();
    stdout.write_all(b"From Server:  ")?;
    stdout.write_all(&modified_sentence)?;
    writeln!(stdout)
}
