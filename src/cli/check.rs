//! `upcase check`: parses the flags, runs [`upcase::check`] (with `--run`, on a program it starts
//! itself: [`upcase::check::supervised`]), prints the card in the format asked for (a table, JSON,
//! Gradescope's results.json or JUnit XML) and turns its verdict into an exit status: 0 PASS or
//! PASS_WITH_WARNINGS, 1 FAIL, 2 CANNOT_RUN (or bad flags, or a bad rubric), 3 INCOMPLETE.
//! Nothing here probes anything.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::check_client::ClientArgs;
use super::program::ProgramArgs;
use super::{exit, parse_duration, parse_encoding, Target};
use upcase::check::{self, netns, report, supervised, Options, Rubric, Verdict};
use upcase::transform::Encoding;

/// How the card is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people, coloured on a terminal.
    Text,
    /// One JSON object: rows, criteria, verdict, counts, score.
    Json,
    /// Gradescope's autograder results.json: a test per criterion, worth its points.
    Gradescope,
    /// JUnit XML: a test case per row, for CI.
    Junit,
}

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

    /// How to print the card.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Print the card as JSON (the same as --format json).
    #[arg(long, conflicts_with = "format")]
    json: bool,

    /// Points per criterion, from a TOML file (`warned = 0.5` and a `[points]` table, e.g.
    /// `unicode = 20`); what it leaves out keeps the default.
    #[arg(long, value_name = "RUBRIC.toml")]
    rubric: Option<PathBuf>,

    #[command(flatten)]
    program: ProgramArgs,

    #[command(flatten)]
    client: ClientArgs,
}

pub(super) fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let card = match args.client.card(&args.target, args.budget, args.rubric.as_deref(), args.program.dir()) {
        Some(Ok(card)) => card,
        Some(Err(code)) => return Ok(code),
        None => match server_card(&args) {
            Ok(card) => card,
            Err(code) => return Ok(code),
        },
    };
    print_card(&card, &args)
}

/// A server's card, or the exit status of a rubric that could not be read.
fn server_card(args: &CheckArgs) -> Result<check::Card, ExitCode> {
    let transport = args.target.transport();
    let rubric = match &args.rubric {
        Some(path) => match Rubric::load(path, transport) {
            Ok(rubric) => rubric,
            Err(error) => {
                eprintln!("upcase: error: {error}");
                return Err(ExitCode::from(exit::CANNOT_RUN));
            }
        },
        None => Rubric::default_for(transport),
    };
    let options = Options {
        target: args.target.to.clone(),
        transport,
        timeout: args.timeout,
        budget: args.budget,
        encoding: args.encoding,
        rubric,
    };
    let card = match args.program.supervision() {
        Some(supervision) => {
            super::interrupt::stop_programs_on_signal();
            if supervision.isolated {
                if let Err(error) = netns::enter_fresh() {
                    eprintln!("upcase: error: --isolated: {error}; run without --isolated");
                    return Err(ExitCode::from(exit::CANNOT_RUN));
                }
            }
            supervised::run_program(&options, &supervision)
        }
        None => check::run(&options),
    };
    Ok(card)
}

/// Prints the card in the format asked for, and turns its verdict into the exit status.
fn print_card(card: &check::Card, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    if let (Verdict::CannotRun, Some(problem)) = (card.verdict, &card.problem) {
        eprintln!("upcase: error: {problem}");
    }
    let format = if args.json { Format::Json } else { args.format };
    let printed = match format {
        Format::Text => {
            let colour = std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty());
            report::text(card, colour)
        }
        Format::Json => report::json(card)? + "\n",
        Format::Gradescope => report::gradescope(card)? + "\n",
        Format::Junit => report::junit(card)? + "\n",
    };
    print!("{printed}");
    let code = match card.verdict {
        Verdict::Pass | Verdict::PassWithWarnings => exit::OK,
        Verdict::Fail => exit::FAILED,
        Verdict::CannotRun => exit::CANNOT_RUN,
        Verdict::Incomplete => exit::INCOMPLETE,
    };
    Ok(ExitCode::from(code))
}
