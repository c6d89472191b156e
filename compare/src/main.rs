//! `upcase-compare`: see the library's documentation and `--help`. Only dispatches.

use std::process::ExitCode;

use clap::Parser;
use upcase_compare::Options;

fn main() -> ExitCode {
    match upcase_compare::run(&Options::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("upcase-compare: {e:#}");
            ExitCode::from(2)
        }
    }
}
