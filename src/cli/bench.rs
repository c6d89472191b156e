//! `upcase bench`: parses the flags, shows progress, prints the report (text or JSON), writes
//! the plot, and turns the outcome into an exit status a script can use.
//!
//! The load itself is [`upcase::bench`]; nothing here measures anything. Exit status: 0 when
//! every request got its correct reply, 1 when the bench found a problem (a wrong, lost or
//! unanswered reply, a failed connection), 2 when it could not run at all.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{exit, parse_duration, parse_encoding, Target};
use upcase::bench::{self, Options, Pattern, Progress, Text};
use upcase::format::thousands;
use upcase::transform::Encoding;

/// Flags of `upcase bench`.
#[derive(Debug, Args)]
pub(super) struct BenchArgs {
    #[command(flatten)]
    target: Target,

    /// How each flow talks to the server.
    #[arg(long, value_enum, default_value = "rr")]
    pattern: PatternArg,

    /// Flows at once: TCP connections or UDP sockets, all on --threads threads.
    #[arg(long, value_name = "N", default_value_t = 1)]
    conns: usize,

    /// How long to send requests.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    duration: Duration,

    /// Bytes per request (stream: bytes of the text sent over and over).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    size: usize,

    /// The text sent: ascii (lowercase letters and spaces) or unicode (ß, ﬁ, Greek, Cyrillic,
    /// emoji: replies longer than requests).
    #[arg(long, value_enum, default_value = "ascii")]
    text: TextArg,

    /// The encoding the server reads: the text is written in it, and each reply is checked
    /// against its uppercase in it (characters the encoding cannot write are left out of the
    /// text). Any WHATWG label: utf-8, latin1, shift_jis, koi8-r, utf-16le, ...
    #[arg(long, default_value = "utf-8", value_parser = parse_encoding)]
    encoding: Encoding,

    /// Open loop: send R requests per second in total, spread over the flows, whatever the
    /// replies do; latency counts from when each request was due [default: closed loop, each
    /// flow sends as soon as its reply is in].
    #[arg(long, value_name = "R")]
    rate: Option<f64>,

    /// How long to wait for a connection or a reply before counting it as failed.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,

    /// Threads that run the flows; 1 leaves the other cores to a server on the same machine.
    #[arg(long, value_name = "N", default_value_t = Options::default().threads)]
    threads: usize,

    /// Print one JSON object with every figure and the parameters, instead of the text report.
    #[arg(long)]
    json: bool,

    /// Also write the latency distribution as an SVG picture to this file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,

    /// The server's process id: report its CPU time per request (Linux).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

/// `--pattern`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum PatternArg {
    /// Request, reply, next request, on each flow's connection or socket.
    Rr,
    /// A new TCP connection per request, as the lecture's client does.
    Crr,
    /// Write and read at once for the whole run, for throughput (TCP).
    Stream,
}

/// `--text`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum TextArg {
    /// Lowercase ASCII letters and spaces.
    Ascii,
    /// Several scripts, with characters that grow when uppercased.
    Unicode,
}

pub(super) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let options = Options {
        target: args.target.to.clone(),
        transport: args.target.transport(),
        pattern: match args.pattern {
            PatternArg::Rr => Pattern::Rr,
            PatternArg::Crr => Pattern::Crr,
            PatternArg::Stream => Pattern::Stream,
        },
        conns: args.conns,
        duration: args.duration,
        size: args.size,
        text: match args.text {
            TextArg::Ascii => Text::Ascii,
            TextArg::Unicode => Text::Unicode,
        },
        encoding: args.encoding,
        rate: args.rate,
        timeout: args.timeout,
        server_pid: args.server_pid,
        threads: args.threads,
    };
    // Opened before the run, so a path that cannot be written fails at once, not after it.
    let plot = match &args.plot {
        Some(path) => match File::create(path) {
            Ok(file) => Some((path, file)),
            Err(e) => return cannot_run(format_args!("cannot write the plot to {}: {e}", path.display())),
        },
        None => None,
    };
    let mut progress = Display::new(&options, args.json);
    let report = match bench::run(&options, &mut |p| progress.update(p)) {
        Ok(report) => report,
        Err(e) => {
            progress.finish();
            return cannot_run(format_args!("{e}"));
        }
    };
    progress.finish();
    if let Some((path, mut file)) = plot {
        if let Err(e) = file.write_all(bench::svg(&report).as_bytes()).and_then(|()| file.flush()) {
            return cannot_run(format_args!("cannot write the plot to {}: {e}", path.display()));
        }
    }
    let mut stdout = io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        writeln!(stdout, "{report}")?;
    }
    Ok(ExitCode::from(if report.ok { exit::OK } else { exit::FAILED }))
}

/// One line on stderr, and the status that says the bench never ran.
fn cannot_run(why: std::fmt::Arguments<'_>) -> anyhow::Result<ExitCode> {
    eprintln!("upcase: error: {why}");
    Ok(ExitCode::from(exit::CANNOT_RUN))
}

/// How progress is shown: a live line on a terminal, a plain line a second in a pipe (so a log
/// shows the run advancing), nothing with --json (stdout is for the one JSON object).
enum Display {
    Bar(ProgressBar),
    Lines { last: u64, at: Duration },
    Quiet,
}

impl Display {
    fn new(options: &Options, json: bool) -> Self {
        if json {
            return Self::Quiet;
        }
        if !io::stdout().is_terminal() {
            return Self::Lines { last: 0, at: Duration::ZERO };
        }
        let millis = u64::try_from(options.duration.as_millis()).unwrap_or(u64::MAX);
        let bar = ProgressBar::with_draw_target(Some(millis), ProgressDrawTarget::stdout());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {elapsed:>4} of {len_s}  {msg}") {
            let len_s = format!("{:.0}s", options.duration.as_secs_f64());
            bar.set_style(style.with_key(
                "len_s",
                move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&len_s);
                },
            ));
        }
        bar.set_message(format!(
            "{} {} to {}: starting",
            options.transport.name(),
            options.pattern.name(),
            options.target
        ));
        bar.tick();
        Self::Bar(bar)
    }

    fn update(&mut self, progress: &Progress) {
        match self {
            Self::Bar(bar) => {
                let per_second = progress.completed as f64 / progress.elapsed.as_secs_f64().max(1e-9);
                bar.set_position(u64::try_from(progress.elapsed.as_millis()).unwrap_or(u64::MAX));
                let (rate, errors) = (thousands(per_second.round() as u64), thousands(progress.errors));
                bar.set_message(format!("{rate} requests/s, {errors} errors"));
            }
            Self::Lines { last, at } => {
                let seconds = (progress.elapsed - *at).as_secs_f64().max(1e-9);
                let per_second = (progress.completed - *last) as f64 / seconds;
                println!(
                    "{:>6.1} s  {:>11} requests/s  {} errors so far",
                    progress.elapsed.as_secs_f64(),
                    thousands(per_second.round() as u64),
                    thousands(progress.errors)
                );
                (*last, *at) = (progress.completed, progress.elapsed);
            }
            Self::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
