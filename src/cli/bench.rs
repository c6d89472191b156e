//! `upcase bench`: parses the flags, runs the load, and shows its progress: a live bar, a line
//! per interval, or JSON events.
//!
//! The load itself is [`upcase::bench`]; nothing here measures anything. `upcase bench merge` is
//! in `merge.rs`; what becomes of a report (thresholds, files, printing, the exit status: 0, 1,
//! 2 or 3) is in `outcome.rs`.

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::merge::MergeArgs;
use super::outcome::{cannot_run, finish, Event, Files, Format, ReportArgs};
use super::{parse_duration, parse_encoding, Target};
use upcase::bench::{self, interval_line, Clients, Options, Parameters, Pattern, Progress, Text};
use upcase::format::thousands;
use upcase::transform::Encoding;

/// Flags of `upcase bench`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,

    #[command(flatten)]
    target: Target,

    /// How each flow talks to the server.
    #[arg(long, value_enum, default_value = "rr")]
    pattern: PatternArg,

    /// Flows at once: TCP connections or UDP sockets.
    #[arg(long, value_name = "N", default_value_t = 1)]
    conns: usize,

    /// How the flows are driven: all on --threads threads (multiplexed), or each on a thread
    /// of its own with blocking sockets, as separate client programs are (independent; at most
    /// 4,096 flows).
    #[arg(long, value_enum, default_value = "multiplexed")]
    clients: ClientsArg,

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
    /// replies do; latency counts from when each request was due (and, labelled uncorrected,
    /// from when it was sent) [default: closed loop, each flow sends as soon as its reply is in].
    #[arg(long, value_name = "R")]
    rate: Option<f64>,

    /// How long to wait for a connection or a reply before counting it as failed.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,

    /// Threads that run multiplexed flows; 1 leaves the other cores to a server on the same
    /// machine.
    #[arg(long, value_name = "N", default_value_t = Options::default().threads)]
    threads: usize,

    /// Print a line per interval while the run goes on: requests/s, errors, p50 and p99 of that
    /// interval (in a pipe there is one a second anyway; the report keeps them for --report).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    interval: Option<Duration>,

    /// Print newline-delimited JSON events instead: "start" (the parameters), "interval" (one
    /// per --interval, 1s unless told otherwise) and "end" (the report, as --json prints it).
    #[arg(long, conflicts_with = "json")]
    json_stream: bool,

    #[command(flatten)]
    output: ReportArgs,

    /// The server's process id: report its CPU time per request (Linux).
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
}

/// Subcommands of `upcase bench`.
#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Combine the JSON reports of runs made at the same time (one per machine or pod) into one
    /// report: requests and errors summed, percentiles from the merged latency histograms.
    Merge(MergeArgs),
}

/// `--clients`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ClientsArg {
    /// All flows share the bench's --threads threads.
    Multiplexed,
    /// A thread per flow, with blocking sockets.
    Independent,
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
    if let Some(BenchCommand::Merge(merge)) = args.command {
        return super::merge::run(merge);
    }
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
        clients: match args.clients {
            ClientsArg::Multiplexed => Clients::Multiplexed,
            ClientsArg::Independent => Clients::Independent,
        },
        interval: args.interval.unwrap_or(Options::default().interval),
        percentiles: args.output.percentiles.clone().map_or_else(bench::default_percentiles, |p| p.0),
    };
    let files = match Files::open(&args.output) {
        Ok(files) => files,
        Err(why) => return cannot_run(&why),
    };
    let format = match (args.output.json, args.json_stream) {
        (true, _) => Format::Json,
        (_, true) => Format::JsonStream,
        _ => Format::Text,
    };
    if format == Format::JsonStream {
        Event::Start { parameters: Parameters::from(&options) }.print();
    }
    let mut progress = Display::new(&options, format, args.interval.is_some());
    let report = bench::run(&options, &mut |p| progress.update(p));
    progress.finish();
    match report {
        Ok(report) => finish(report, &args.output.fail_if, files, format),
        Err(e) => cannot_run(&format!("{e}")),
    }
}

/// How progress is shown: on a terminal a live bar (with --interval, a line per interval above
/// it); in a pipe a line per interval (so a log shows the run advancing); with --json-stream an
/// event per interval; nothing with --json (stdout is for the one JSON object).
enum Display {
    Bar { bar: ProgressBar, lines: bool },
    Lines,
    Events,
    Quiet,
}

impl Display {
    fn new(options: &Options, format: Format, lines: bool) -> Self {
        match format {
            Format::Json => return Self::Quiet,
            Format::JsonStream => return Self::Events,
            Format::Text if !io::stdout().is_terminal() => return Self::Lines,
            Format::Text => {}
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
        Self::Bar { bar, lines }
    }

    fn update(&mut self, progress: &Progress) {
        match self {
            Self::Bar { bar, lines } => {
                if *lines {
                    bar.println(interval_line(&progress.interval));
                }
                bar.set_position(u64::try_from(progress.elapsed.as_millis()).unwrap_or(u64::MAX));
                let rate = thousands(progress.interval.requests_per_s.round() as u64);
                bar.set_message(format!("{rate} requests/s, {} errors", thousands(progress.errors)));
            }
            Self::Lines => println!("{}", interval_line(&progress.interval)),
            Self::Events => Event::Interval(&progress.interval).print(),
            Self::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Self::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}
