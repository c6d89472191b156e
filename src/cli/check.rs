//! `upcase check`: parses the flags, runs [`upcase::check`], prints the card (table or JSON) and
//! turns it into an exit status: 0 nothing failed, 1 something failed, 2 the server could not be
//! reached at all. Nothing here probes anything.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{exit, parse_duration, parse_encoding, Target};
use upcase::check::{self, Options};
use upcase::transform::Encoding;

/// Flags of `upcase check`. TCP by default; --udp grades the UDP side instead (one transport per
/// run, to keep the card readable).
#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    #[command(flatten)]
    target: Target,

    /// How long any single wait (a connect, a reply) may take before the probe counts it as lost.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,

    /// How long the whole check may take: probes it does not reach are skipped, and a probe it
    /// cuts short is reported as skipped, so a hung server still gets a card in time.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    budget: Duration,

    /// The encoding the server promises (any label `send` and `serve` take: utf-8, latin1,
    /// koi8-r, shift_jis, ...): every probe writes its text in it and expects the uppercase
    /// there. Without it, text is UTF-8 and the `encoding` row guesses what the server assumes.
    #[arg(long, value_parser = parse_encoding)]
    encoding: Option<Encoding>,

    /// Print the card as one JSON object (rows with name, status, evidence, advice; verdict).
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let options = Options {
        target: args.target.to.clone(),
        transport: args.target.transport(),
        timeout: args.timeout,
        budget: args.budget,
        encoding: args.encoding,
    };
    let card = match check::run(&options) {
        Ok(card) => card,
        Err(error) => {
            eprintln!("upcase: error: {error}");
            return Ok(ExitCode::from(exit::CANNOT_RUN));
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        let colour =
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty());
        print!("{}", card.render(colour));
    }
    Ok(ExitCode::from(if card.failed() { exit::FAILED } else { exit::OK }))
}
