//! `upcase grade CLASS.toml`: reads the class file, grades every submission with
//! [`upcase::grade`], shows progress on stderr (a live line on a terminal, plain lines in a pipe),
//! writes the grades and cards into `--out`, and prints a summary table. Exit status: 0 when every
//! submission was graded (whatever its grade), 1 when some could not be (`CANNOT_RUN`), 2 for a bad
//! class file, rubric or output folder. Nothing here runs a submission itself.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::exit;
use upcase::check::card::points;
use upcase::check::{netns, Rubric, Verdict};
use upcase::grade::{self, output, Class, Event, Settings};
use upcase::net::Transport;

/// Flags of `upcase grade`.
#[derive(Debug, Args)]
pub(super) struct GradeArgs {
    /// The class: a [[submission]] table per student with name, server = "CMD" (or client),
    /// transport, and optionally to (localhost:12000), dir, timeout (1s) and budget (30s).
    #[arg(value_name = "CLASS.toml")]
    class: PathBuf,

    /// Where to write grades.csv, junit.xml, and a folder per submission with card.txt and
    /// Gradescope's results.json.
    #[arg(long, value_name = "DIR", default_value = "grades")]
    out: PathBuf,

    /// Points per criterion, from a TOML file (as `upcase check --rubric`); what it leaves out
    /// keeps the default.
    #[arg(long, value_name = "RUBRIC.toml")]
    rubric: Option<PathBuf>,

    /// How many submissions to grade at once. Each runs in a network namespace of its own (as
    /// root), so that every one can have port 12000; where that is not allowed, they run one at
    /// a time, and grade says why.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

pub(super) fn run(args: GradeArgs) -> anyhow::Result<ExitCode> {
    super::interrupt::stop_programs_on_signal();
    let class = match Class::load(&args.class) {
        Ok(class) => class,
        Err(error) => return Ok(bad(&error)),
    };
    let (mut rubrics, mut client_rubrics) = (HashMap::new(), HashMap::new());
    for transport in [Transport::Tcp, Transport::Udp] {
        let (rubric, client_rubric) = match &args.rubric {
            Some(path) => match (Rubric::load(path, transport), Rubric::load_for_client(path, transport)) {
                (Ok(rubric), Ok(client_rubric)) => (rubric, client_rubric),
                (Err(error), _) | (_, Err(error)) => return Ok(bad(&error)),
            },
            None => (Rubric::default_for(transport), Rubric::default_for_client(transport)),
        };
        rubrics.insert(transport, rubric);
        client_rubrics.insert(transport, client_rubric);
    }
    if let Err(error) = std::fs::create_dir_all(&args.out) {
        return Ok(bad(&format!("cannot create the output folder {}: {error}", args.out.display())));
    }
    let (jobs, isolated) = isolation(usize::from(args.jobs));
    let settings = Settings { rubrics, client_rubrics, jobs, isolated };
    let began = Instant::now();
    let progress = Progress::new(&class);
    let cards = grade::grade_class(&class, &settings, &|event| progress.show(&class, event));
    progress.finish();
    output::write(&args.out, &class, &cards).context("the grades were not all written")?;
    print!("{}", output::summary(&class, &cards));
    let how = match (jobs, isolated) {
        (1, true) => "one at a time, each in a network namespace of its own".to_owned(),
        (_, true) => format!("{jobs} at a time, each in a network namespace of its own"),
        (_, false) => "one at a time, on this machine's loopback".to_owned(),
    };
    let took = humantime::format_duration(Duration::from_secs(began.elapsed().as_secs()));
    let count = match class.submissions.len() {
        1 => "1 submission".to_owned(),
        n => format!("{n} submissions"),
    };
    println!(
        "\n{count} graded in {took} ({how}); written: {}, {}, and card.txt and results.json in a folder per submission in {}",
        args.out.join("grades.csv").display(),
        args.out.join("junit.xml").display(),
        args.out.display()
    );
    let all_graded = cards.iter().all(|card| card.verdict != Verdict::CannotRun);
    Ok(ExitCode::from(if all_graded { exit::OK } else { exit::FAILED }))
}

/// Prints what is wrong with the class, rubric or output folder: exit status 2.
fn bad(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("upcase: error: {error}");
    ExitCode::from(exit::CANNOT_RUN)
}

/// How many at once, and whether each in a namespace of its own, as this process is allowed.
fn isolation(jobs: usize) -> (usize, bool) {
    match netns::available() {
        Ok(()) => (jobs, true),
        Err(why) if jobs > 1 => {
            eprintln!(
                "upcase: note: --jobs {jobs} needs a network namespace per submission, so that each can have its \
                 port, and {why}; grading one at a time instead"
            );
            (1, false)
        }
        Err(why) => {
            eprintln!(
                "upcase: note: no network namespace per submission ({why}); grading on this machine's loopback, \
                 where a port one submission leaves in TIME_WAIT can delay the next by up to a minute"
            );
            (1, false)
        }
    }
}

/// Progress on stderr: a live line on a terminal, a line per start and end in a pipe.
struct Progress {
    bar: Option<ProgressBar>,
    running: Mutex<Vec<usize>>,
    done: Mutex<usize>,
    total: usize,
}

impl Progress {
    fn new(class: &Class) -> Self {
        let total = class.submissions.len();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner} {pos}/{len} graded, {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar, running: Mutex::default(), done: Mutex::default(), total }
    }

    fn show(&self, class: &Class, event: Event<'_>) {
        let name = |index: usize| class.submissions.get(index).map_or("?", |s| s.name.as_str());
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let line = match event {
            Event::Started(index) => {
                running.push(index);
                format!("grading {} ({} of {})", name(index), index + 1, self.total)
            }
            Event::Graded(index, card) => {
                running.retain(|&i| i != index);
                *done += 1;
                let seconds = Duration::from_millis(card.elapsed_ms).as_secs_f64();
                format!(
                    "graded {}: {}, {} of {}, in {seconds:.1} s ({} left)",
                    name(index),
                    card.verdict.word(),
                    points(card.score),
                    points(card.max_score),
                    self.total - *done
                )
            }
        };
        match &self.bar {
            Some(bar) => {
                if matches!(event, Event::Graded(..)) {
                    bar.println(&line);
                    bar.inc(1);
                }
                let names: Vec<&str> = running.iter().map(|&i| name(i)).collect();
                bar.set_message(format!("grading {}", names.join(", ")));
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
