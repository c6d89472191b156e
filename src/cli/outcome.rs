//! What becomes of a bench report, whether a run's or a merge's: the `--fail-if` thresholds
//! judged, the plot and the HTML page written, the report printed (table, JSON, or the end event
//! of a JSON stream), and the exit status.
//!
//! Exit statuses (`exit.rs`): 0 every request got its correct reply and no threshold was
//! breached; 1 a problem (a wrong, lost or unanswered reply, a failed connection), unless a
//! `--fail-if` on errors decides about them instead; 3 a threshold breached; 2 for what could not
//! run at all (an output file that cannot be written, bad flags).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::exit;
use upcase::bench::threshold::{self, Threshold};
use upcase::bench::{self, Interval, Parameters, Report};

/// Flags of `upcase bench` and `upcase bench merge` about the report.
#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    /// Print one JSON object with every figure, the parameters and the latency histogram,
    /// instead of the text report.
    #[arg(long)]
    pub(super) json: bool,

    /// The latency percentiles to report, in the table, the JSON and the plots
    /// [default: 50,90,99,99.9; a merge: the first run's].
    #[arg(long, value_name = "LIST", value_parser = parse_percentiles)]
    pub(super) percentiles: Option<Percentiles>,

    /// Also write the latency distribution as an SVG picture to this file.
    #[arg(long, value_name = "FILE.svg")]
    pub(super) plot: Option<PathBuf>,

    /// Also write the whole report as one self-contained HTML page to this file.
    #[arg(long, value_name = "FILE.html")]
    pub(super) report: Option<PathBuf>,

    /// Fail (exit status 3) when METRIC OP VALUE holds: p99>2ms, max>=1s, errors>0,
    /// errors>0.1%, rate<100k, ... Repeatable. A threshold on errors (errors, wrong, timeouts,
    /// connection) decides about failures instead of any failure exiting 1.
    #[arg(long = "fail-if", value_name = "EXPR")]
    pub(super) fail_if: Vec<Threshold>,
}

/// `--percentiles`, parsed.
#[derive(Debug, Clone)]
pub(super) struct Percentiles(pub(super) Vec<f64>);

fn parse_percentiles(text: &str) -> Result<Percentiles, String> {
    let mut list = text
        .split(',')
        .map(|item| {
            item.trim()
                .trim_start_matches('p')
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    format!("{item:?} is not a percentile from 0 to 100 (write e.g. 50,90,99,99.9)")
                })
        })
        .collect::<Result<Vec<f64>, String>>()?;
    list.sort_by(f64::total_cmp);
    list.dedup();
    if list.len() > bench::MAX_PERCENTILES {
        return Err(format!("at most {} percentiles", bench::MAX_PERCENTILES));
    }
    Ok(Percentiles(list))
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Text,
    Json,
    JsonStream,
}

/// The files to write, opened before the run so a path that cannot be written fails at once.
pub(super) struct Files {
    plot: Option<(PathBuf, File)>,
    html: Option<(PathBuf, File)>,
}

impl Files {
    pub(super) fn open(args: &ReportArgs) -> Result<Self, String> {
        let open = |path: &Option<PathBuf>, what: &str| {
            path.as_ref()
                .map(|path| match File::create(path) {
                    Ok(file) => Ok((path.clone(), file)),
                    Err(e) => Err(format!("cannot write the {what} to {}: {e}", path.display())),
                })
                .transpose()
        };
        Ok(Self { plot: open(&args.plot, "plot")?, html: open(&args.report, "report")? })
    }
}

/// One line of `--json-stream`: `{"event": "start" | "interval" | "end", ...}`.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub(super) enum Event<'a> {
    /// Before the load: what is about to run.
    Start {
        /// The parameters, as the end report will have them.
        parameters: Parameters,
    },
    /// At the end of every interval.
    Interval(&'a Interval),
    /// After the run: the full report, as `--json` prints it.
    End(&'a Report),
}

impl Event<'_> {
    /// Prints the event as one line on stdout (flushed: a pipe's reader sees it at once).
    pub(super) fn print(&self) {
        if let Ok(line) = serde_json::to_string(self) {
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
        }
    }
}

/// Judges, writes, prints, and says how the command ends.
pub(super) fn finish(
    mut report: Report,
    thresholds: &[Threshold],
    files: Files,
    format: Format,
) -> anyhow::Result<ExitCode> {
    threshold::judge(&mut report, thresholds);
    if let Some((path, file)) = files.plot {
        if let Err(e) = write(file, &bench::svg(&report)) {
            return cannot_run(&format!("cannot write the plot to {}: {e}", path.display()));
        }
    }
    if let Some((path, file)) = files.html {
        if let Err(e) = write(file, &bench::html(&report)) {
            return cannot_run(&format!("cannot write the report to {}: {e}", path.display()));
        }
    }
    match format {
        Format::Text => println!("{report}"),
        Format::Json => {
            let mut stdout = io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        }
        Format::JsonStream => Event::End(&report).print(),
    }
    if format != Format::Text {
        // The table shows them; a JSON reader may not be a person, a CI log is.
        for verdict in report.thresholds.iter().filter(|verdict| verdict.breached) {
            eprintln!("upcase: threshold breached: {} ({})", verdict.threshold, verdict.measured);
        }
    }
    Ok(ExitCode::from(status(&report, thresholds)))
}

/// 1 for problems no threshold decides about, 3 for a breached threshold, 0 otherwise.
fn status(report: &Report, thresholds: &[Threshold]) -> u8 {
    let errors_judged = thresholds.iter().any(Threshold::governs_errors);
    if report.requests == 0 || (report.errors.total > 0 && !errors_judged) {
        exit::FAILED
    } else if report.breached() {
        exit::THRESHOLD
    } else {
        exit::OK
    }
}

fn write(mut file: File, text: &str) -> io::Result<()> {
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// One line on stderr, and the status that says the command could not run.
pub(super) fn cannot_run(why: &str) -> anyhow::Result<ExitCode> {
    eprintln!("upcase: error: {why}");
    Ok(ExitCode::from(exit::CANNOT_RUN))
}

/// Reads a report written by `upcase bench --json`, or the end event of `--json-stream`.
pub(super) fn read_report(path: &Path) -> Result<Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let whole = match serde_json::from_str::<Report>(&text) {
        Ok(report) => return Ok(report),
        Err(e) => e,
    };
    let end = text.lines().rev().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        (value.get("event")?.as_str()? == "end").then_some(value)
    });
    match end {
        Some(value) => serde_json::from_value(value)
            .map_err(|e| format!("{}: the end event is not a bench report: {e}", path.display())),
        None => Err(format!(
            "{} is not a report of `upcase bench --json` or `--json-stream`: {whole}",
            path.display()
        )),
    }
}
