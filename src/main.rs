//! The `upcase` binary: its command line ([`cli`]) over the `upcase` library.
//!
//! The command line belongs to the binary alone: the library never parses flags, prints usage or
//! exits the process.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
