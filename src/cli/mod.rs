//! The `upcase` command line: parses flags, sets up logging, runs a subcommand, maps the outcome
//! to an exit status ([`exit`]).
//!
//! This is the binary's edge: errors arrive as `anyhow` chains and are printed once, as one line,
//! with `{:#}`. Nothing below this module reads flags, prints usage or exits the process.

mod bench;
mod check;
mod check_client;
mod exit;
mod faults;
mod grade;
mod interrupt;
mod merge;
mod outcome;
mod program;
mod send;
mod serve;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use upcase::net::Transport;
use upcase::transform::Encoding;

/// The classic socket-programming example, built as real software: a server that answers every
/// sentence with its uppercase, over UDP and TCP, and a client for it.
#[derive(Debug, Parser)]
#[command(name = "upcase", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// How log lines are written on stderr: text, for people; json, one object a line with every
    /// value (addresses, 4-tuples, counters) a field of its own, for programs.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the uppercase service (UDP and TCP on localhost:12000 unless told otherwise).
    Serve(serve::ServeArgs),
    /// Send text to an uppercase server and print the reply (interactive, arguments, or a pipe).
    Send(send::SendArgs),
    /// Load an uppercase server and measure it, checking every reply (rr, crr or stream).
    Bench(Box<bench::BenchArgs>),
    /// Grade a server against the lecture's protocol and print a report card (TCP, or --udp); or,
    /// with --client CMD, grade a client, playing its server.
    Check(check::CheckArgs),
    /// Grade a class: run every submission of CLASS.toml, check it, and write the grades and cards.
    Grade(grade::GradeArgs),
}

/// Which server a client command talks to, and over what; shared by `send` and `bench`.
#[derive(Debug, clap::Args)]
struct Target {
    /// Use UDP: a datagram per request, and its reply awaited for --timeout.
    #[arg(long, conflicts_with = "tcp")]
    udp: bool,

    /// Use TCP (the default).
    #[arg(long)]
    tcp: bool,

    /// The server, HOST:PORT or [V6]:PORT.
    #[arg(long, value_name = "ADDR", default_value = "localhost:12000")]
    to: String,
}

impl Target {
    /// The transport the flags ask for.
    fn transport(&self) -> Transport {
        if self.udp {
            Transport::Udp
        } else {
            Transport::Tcp
        }
    }
}

/// Runs the command line of the `upcase` binary.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(args, cli.log_format),
        Command::Send(args) => send::run(args),
        Command::Bench(args) => bench::run(*args),
        Command::Check(args) => check::run(args),
        Command::Grade(args) => grade::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("upcase: error: {error:#}");
            ExitCode::from(exit::FAILED)
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default `info`), so stdout carries only results.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => {
            logs.json().flatten_event(true).with_current_span(false).with_span_list(false).init()
        }
    }
}

/// Parses `--encoding`.
fn parse_encoding(label: &str) -> Result<Encoding, String> {
    label.parse().map_err(|e: upcase::transform::UnknownEncoding| e.to_string())
}

/// Parses a duration such as `1s`, `250ms` or `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write e.g. 500ms, 2s or 1m)"))
}
