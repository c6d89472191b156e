//! `upcase bench merge RUN.json...`: reads the reports of runs made at the same time (one per
//! machine, or per pod of `deploy/kubernetes/bench-job.yaml`), merges them exactly
//! ([`upcase::bench::merge`]) and prints the result like a run's.
//!
//! Exit status as for a run (`outcome.rs`), and 2 when a report cannot be read or the runs
//! cannot be merged, with one line on stderr saying which and why.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::outcome::{cannot_run, finish, read_report, Files, Format, ReportArgs};

/// Flags of `upcase bench merge`.
#[derive(Debug, Args)]
pub(super) struct MergeArgs {
    /// The reports: files written by `upcase bench --json` (or `--json-stream`), one per run.
    #[arg(required = true, value_name = "RUN.json")]
    runs: Vec<PathBuf>,

    #[command(flatten)]
    output: ReportArgs,
}

pub(super) fn run(args: MergeArgs) -> anyhow::Result<ExitCode> {
    let files = match Files::open(&args.output) {
        Ok(files) => files,
        Err(why) => return cannot_run(&why),
    };
    let mut runs = Vec::with_capacity(args.runs.len());
    for path in &args.runs {
        match read_report(path) {
            Ok(report) => runs.push((path.display().to_string(), report)),
            Err(why) => return cannot_run(&why),
        }
    }
    let percentiles = args.output.percentiles.as_ref().map(|p| p.0.as_slice());
    match upcase::bench::merge(&runs, percentiles) {
        Ok(report) => {
            let format = if args.output.json { Format::Json } else { Format::Text };
            finish(report, &args.output.fail_if, files, format)
        }
        Err(e) => cannot_run(&e.to_string()),
    }
}
