//! `upcase send`: the lecture's client, in three modes chosen by how it is called.
//!
//! - TEXT on the command line: one request, reply printed.
//! - A terminal on stdin (or `--interactive`): the lecture's prompt, once per line, until EOF.
//! - A pipe on stdin: TCP streams it through the server; UDP sends a datagram per line.

use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::{exit, parse_duration, parse_encoding, Target};
use upcase::client::{self, Options, UdpClient};
use upcase::transform::{self, Encoding};

/// The lecture's prompt, word for word.
const PROMPT: &str = "Input lowercase sentence:";

/// Flags of `upcase send`.
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    #[command(flatten)]
    target: Target,

    /// UDP: how long to wait for each reply. TCP: how long to wait to connect, and for the rest
    /// of the reply once everything is sent [default: 1s for UDP, 5s for TCP].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// UDP: how many times to resend a message whose reply did not come.
    #[arg(long, value_name = "N", default_value_t = 2)]
    retries: u32,

    /// The encoding both sides agree on: what you type is written in it before sending, and the
    /// reply is read in it for display (a TCP pipe passes bytes unchanged). Any WHATWG label:
    /// utf-8, latin1, windows-1252, iso-8859-5, koi8-r, shift_jis, euc-kr, gbk, utf-16le, ...
    #[arg(long, default_value = "utf-8", value_parser = parse_encoding)]
    encoding: Encoding,

    /// Prompt for a sentence per line, as the lecture's client does, even when stdin is not a
    /// terminal.
    #[arg(long, short = 'i')]
    interactive: bool,

    /// Text to send, joined by spaces; without it, read stdin.
    #[arg(value_name = "TEXT")]
    text: Vec<String>,
}

pub(super) fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let default_timeout = if args.target.udp { Duration::from_secs(1) } else { Duration::from_secs(5) };
    let options = Options { timeout: args.timeout.unwrap_or(default_timeout), retries: args.retries };
    let mut exchange = Exchange::new(&args, options)?;
    if !args.text.is_empty() {
        exchange.request_and_print(args.text.join(" ").as_bytes())?;
        return Ok(ExitCode::from(exit::OK));
    }
    let stdin = io::stdin();
    if args.interactive || stdin.is_terminal() {
        return prompt_loop(&mut exchange, stdin.lock());
    }
    match exchange {
        Exchange::Tcp { target, options, .. } => {
            let mut stdout = io::stdout().lock();
            match client::tcp_stream(&target, stdin, &mut stdout, options) {
                // Whoever reads our output has had enough (`| head`): not an error.
                Err(client::ClientError::Output { reason }) if reason.kind() == io::ErrorKind::BrokenPipe => {
                }
                result => {
                    result?;
                }
            }
        }
        Exchange::Udp { .. } => {
            for line in stdin.lock().split(b'\n') {
                let line = line.context("cannot read stdin")?;
                exchange.request_and_print(strip_cr(&line))?;
            }
        }
    }
    Ok(ExitCode::from(exit::OK))
}

/// One request/reply at a time, over UDP or a fresh TCP connection per request (as the lecture's
/// TCP client does: the reply ends when the server closes).
enum Exchange {
    Tcp { target: String, options: Options, encoding: Encoding },
    Udp { client: UdpClient, encoding: Encoding },
}

impl Exchange {
    fn new(args: &SendArgs, options: Options) -> anyhow::Result<Self> {
        let encoding = args.encoding;
        Ok(if args.target.udp {
            Self::Udp { client: UdpClient::new(&args.target.to, options)?, encoding }
        } else {
            Self::Tcp { target: args.target.to.clone(), options, encoding }
        })
    }

    /// Sends one message (text as typed, UTF-8) and prints its reply on a line. Over TCP,
    /// whatever part of the reply arrived before a failure is printed too, so nothing received
    /// is hidden.
    fn request_and_print(&mut self, typed: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::Tcp { target, options, encoding } => {
                let message = to_wire(typed, *encoding)?;
                let mut reply = Vec::new();
                let outcome = client::tcp_stream(target, message.as_slice(), &mut reply, *options);
                if outcome.is_ok() || !reply.is_empty() {
                    print_line(&for_display(reply, *encoding))?;
                }
                outcome?;
            }
            Self::Udp { client, encoding } => {
                let reply = client.request(&to_wire(typed, *encoding)?)?;
                print_line(&for_display(reply, *encoding))?;
            }
        }
        Ok(())
    }
}

/// What a person typed (UTF-8), written in the agreed encoding. UTF-8 and the byte mode send the
/// bytes exactly as they came, even when they are not valid text.
fn to_wire(typed: &[u8], encoding: Encoding) -> anyhow::Result<Vec<u8>> {
    if matches!(encoding, Encoding::Utf8 | Encoding::Ascii) {
        return Ok(typed.to_vec());
    }
    let text =
        std::str::from_utf8(typed).context("the input is not UTF-8 text, so it cannot be re-encoded")?;
    Ok(transform::encode_text(text, encoding)?)
}

/// A reply, read in the agreed encoding and shown as UTF-8; UTF-8 and the byte mode show the
/// bytes exactly as they came.
fn for_display(reply: Vec<u8>, encoding: Encoding) -> Vec<u8> {
    if matches!(encoding, Encoding::Utf8 | Encoding::Ascii) {
        return reply;
    }
    transform::decode_text(&reply, encoding).into_bytes()
}

/// The lecture's loop: prompt, read a line, print the reply; a failed request is reported and
/// the loop goes on, and the exit status says whether any failed.
fn prompt_loop(exchange: &mut Exchange, mut input: impl BufRead) -> anyhow::Result<ExitCode> {
    let mut failures = 0;
    let mut line = Vec::new();
    loop {
        print!("{PROMPT}");
        io::stdout().flush()?;
        line.clear();
        if input.read_until(b'\n', &mut line).context("cannot read stdin")? == 0 {
            println!();
            break;
        }
        let message = strip_cr(line.strip_suffix(b"\n").unwrap_or(&line));
        if let Err(error) = exchange.request_and_print(message) {
            failures += 1;
            eprintln!("upcase: error: {error:#}");
        }
    }
    Ok(ExitCode::from(if failures == 0 { exit::OK } else { exit::FAILED }))
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Writes the reply's bytes exactly as received, then a newline.
fn print_line(reply: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(reply)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}
