//! The flags of `upcase check` that grade a client instead of a server (`--client CMD`), and the
//! card they make: upcase plays the server at `--to` and runs the client once per scenario
//! ([`upcase::check::client`]). The card is printed, and its verdict turned into an exit status,
//! as a server's is.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{exit, parse_duration, Target};
use upcase::check::client::{self, ClientOptions};
use upcase::check::{Card, Rubric};

/// Flags of `upcase check --client`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Grading a client")]
pub(super) struct ClientArgs {
    /// Grade a client instead of a server: upcase plays the server at --to (TCP, or --udp) and
    /// runs CMD (with `sh -c`) once per scenario, a sentence on its stdin: a normal reply, a lost
    /// UDP reply, a late reply, a TCP reply in segments, a 5,000-byte reply, a reply that is not
    /// UTF-8, no server at all.
    #[arg(long, value_name = "CMD", conflicts_with = "run")]
    client: Option<String>,

    /// With --client: the longest one scenario may take (at least 3s); a client still running
    /// then is stopped, with everything it started, and reported as hanging.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    patience: Duration,
}

impl ClientArgs {
    /// The client's card, when `--client` was given: `Some(Err(status))` when it could not be
    /// made (a bad rubric, or the server cannot be played at --to), the error already printed.
    pub(super) fn card(
        &self,
        target: &Target,
        budget: Duration,
        rubric: Option<&Path>,
        dir: Option<&Path>,
    ) -> Option<Result<Card, ExitCode>> {
        let command = self.client.as_ref()?;
        let transport = target.transport();
        let rubric = match rubric.map(|path| Rubric::load_for_client(path, transport)) {
            None => Rubric::default_for_client(transport),
            Some(Ok(rubric)) => rubric,
            Some(Err(error)) => return Some(Err(cannot_run(&error))),
        };
        let options = ClientOptions {
            command: command.clone(),
            dir: dir.map(Path::to_path_buf),
            target: target.to.clone(),
            transport,
            patience: self.patience,
            budget,
            rubric,
        };
        // The client runs in a process group of its own, which Ctrl-C at the terminal misses.
        super::interrupt::stop_programs_on_signal();
        Some(client::run(&options).map_err(|error| cannot_run(&error)))
    }
}

fn cannot_run(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("upcase: error: {error}");
    ExitCode::from(exit::CANNOT_RUN)
}
