//! `upcase check --run`: the check starts the program under test itself, from the class of
//! student programs (`tests/peers/class/`). Each gets exactly its rows: the last words of a
//! program a probe killed on that probe's row (a Python traceback's exception and line), the
//! program started again and later rows still graded; `runs cleanly` rows for CPU spent while
//! idle, threads and zombies left per connection, a port not rebound at once, SIGTERM ignored; a
//! `CANNOT_RUN` card, in every format, for a program that never answers.
//!
//! Loopback only, each on a free port, each check bounded by its budget and the child by a
//! patience; `upcase check` stops what it started, and the last test checks that nothing is left
//! running. One test waits out a port in TIME_WAIT (a minute); the others that restart a program
//! without SO_REUSEADDR run in a network namespace of their own (`--isolated`, as root), where a
//! restart moves to a fresh one instead, and are skipped with a note where that is not allowed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::card::Card;
use support::submissions::{class_dir, free_port, Submission};
use support::{run, upcase};
use upcase::check::netns;

/// The longest one check may take here: a 30 s budget, restarts, the idle second, the stops.
const CHECK_PATIENCE: Duration = Duration::from_secs(150);

/// `upcase check --run COMMAND --to 127.0.0.1:PORT --timeout 500ms --format json EXTRA...`.
fn check_run(command: &str, port: u16, extra: &[&str]) -> Card {
    let mut check = upcase();
    let to = format!("127.0.0.1:{port}");
    check
        .args(["check", "--run", command, "--to", &to, "--timeout", "500ms", "--format", "json"])
        .args(extra);
    let output = run("upcase check --run", check, b"", CHECK_PATIENCE);
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}; stderr: {}", output.text(), output.stderr));
    Card { code: output.status.code().unwrap(), json, stdout: output.stdout }
}

/// The class's `file`, checked on a free port with `extra` flags; `None` (with a note) when the
/// tools it needs are missing.
fn check_class(file: &'static str, extra: &[&str]) -> Option<Card> {
    let port = free_port();
    let submission = Submission::get(file)?;
    let card = check_run(&submission.command(port), port, extra);
    let left = running(file.trim_end_matches(".c"), port);
    assert!(left.is_empty(), "{file} on port {port} still runs after the check: {left:?}");
    Some(card)
}

/// The processes of this machine running the class's `program` with `port` as an argument.
fn running(program: &str, port: u16) -> Vec<u32> {
    let port = port.to_string();
    let pids =
        std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok());
    pids.filter(|pid| {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
        let args: Vec<String> =
            cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        args.iter().any(|a| a.contains(program)) && args.contains(&port)
    })
    .collect()
}

/// Whether this machine lets the check run in a network namespace of its own; says so if not.
fn isolated() -> bool {
    netns::available().map_err(|why| eprintln!("skipped: no network namespace here ({why})")).is_ok()
}

/// The line of the class's `file` holding `code`, as a traceback names it.
fn line_of(file: &str, code: &str) -> usize {
    let text = std::fs::read_to_string(class_dir().join(file)).unwrap();
    1 + text.lines().position(|line| line.contains(code)).unwrap()
}

/// What a Python traceback of the class's `file` names as the place: `FILE", line N, in <module>`.
fn place(file: &str, code: &str) -> String {
    format!("{file}\", line {}, in <module>)", line_of(file, code))
}

impl Card {
    fn outcome(&self, criterion: &str) -> &str {
        let criteria = self.json["criteria"].as_array().unwrap();
        criteria.iter().find(|c| c["criterion"] == criterion).unwrap()["outcome"].as_str().unwrap()
    }

    fn verdict(&self) -> &str {
        self.json["verdict"].as_str().unwrap()
    }

    /// Asserts each row named has the status given.
    fn statuses(&self, expected: &[(&str, &str)]) {
        for (name, want) in expected {
            assert_eq!(self.status(name), *want, "row {name:?}: {}", self.evidence(name));
        }
    }

    /// Asserts the row ran (it is not one skipped because the program died before it).
    fn probed(&self, name: &str) {
        assert!(!self.evidence(name).starts_with("not run"), "row {name:?}: {}", self.evidence(name));
    }
}

/// The rows of a program that ran cleanly, SO_REUSEADDR and all.
const CLEAN: [(&str, &str); 7] = [
    ("start", "info"),
    ("idle cpu", "pass"),
    ("threads", "pass"),
    ("processes", "pass"),
    ("zombies", "pass"),
    ("restart", "pass"),
    ("stop", "pass"),
];

#[test]
fn the_correct_servers_pass_and_run_cleanly() {
    for file in ["correct_server.py", "correct_server.c"] {
        let Some(card) = check_class(file, &[]) else { continue };
        assert!(["PASS", "PASS_WITH_WARNINGS"].contains(&card.verdict()), "{file}: {:#}", card.json);
        assert_eq!(card.code, 0, "{file}");
        card.statuses(&CLEAN);
        card.shows(
            "restart",
            "though a connection of its last run held the port in TIME_WAIT (it sets SO_REUSEADDR)",
        );
        card.shows("stop", "ended on SIGTERM");
        assert_eq!(card.outcome("runs_cleanly"), "pass");
        assert_eq!((card.points("runs_cleanly"), card.json["max_score"].as_f64()), (10.0, Some(110.0)));
        let failed = card.json["counts"]["fail"].as_u64();
        assert_eq!(failed, Some(0), "{file}: {:#}", card.json);
    }
}

#[test]
fn a_server_that_dies_shows_its_traceback_and_is_started_again_once_its_port_is_free() {
    // Without SO_REUSEADDR, on this machine's loopback: the first restart waits out TIME_WAIT.
    let file = "tcp_dies_on_empty.py";
    let Some(card) = check_class(file, &[]) else { return };
    assert_eq!((card.verdict(), card.code), ("FAIL", 1));
    // A character cut in two kills it first, then the empty connection, each with its last words.
    card.shows(
        "split character",
        "the program exited with status 1: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xc3",
    );
    card.shows("split character", &place(file, "recv(buffer_size).decode('utf-8')"));
    card.shows("split character", "it could not bind its port again at once (\"OSError: [Errno 98] Address already in use\"): started again once the port was free");
    card.shows(
        "empty connection",
        "the program exited with status 1: IndexError: list index out of range (File",
    );
    card.shows("empty connection", &place(file, "if sentence.split()[0] == 'quit'"));
    assert_eq!(card.status("empty connection"), "fail");
    for later in ["two lines", "invalid utf-8", "encoding", "many clients", "latency"] {
        card.probed(later);
    }
    card.statuses(&[("restart", "warn"), ("stop", "pass"), ("idle cpu", "pass")]);
    card.shows("restart", "after \"split character\": \"OSError: [Errno 98] Address already in use\"");
    assert!(card.advice("restart").contains("SO_REUSEADDR, 1)"), "{}", card.advice("restart"));
    card.shows("start", "started again");
    assert_eq!((card.outcome("runs_cleanly"), card.points("runs_cleanly")), ("warn", 5.0));
}

#[test]
fn a_server_that_dies_on_invalid_utf8_is_started_again_in_a_fresh_namespace() {
    let file = "tcp_dies_on_invalid_utf8.py";
    if !isolated() {
        return;
    }
    let Some(card) = check_class(file, &["--isolated"]) else { return };
    let decode = place(file, "data.decode('utf-8')");
    card.shows(
        "invalid utf-8",
        "the program exited with status 1: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff",
    );
    card.shows("invalid utf-8", &decode);
    card.shows("split character", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xc3");
    card.shows("split character", &decode);
    assert_eq!((card.status("invalid utf-8"), card.status("split character")), ("fail", "fail"));
    for later in ["encoding", "concurrency", "persistent", "many clients", "connect burst"] {
        card.probed(later);
    }
    // Each restart came back at once: without SO_REUSEADDR, in a fresh namespace when need be.
    let restarts = card.evidence("start");
    assert!(restarts.contains("\"split character\"") && restarts.contains("\"invalid utf-8\""), "{restarts}");
    assert_eq!(card.status("restart"), "warn", "{}", card.evidence("restart"));
    card.shows("restart", "it does not set SO_REUSEADDR");
    assert!(card.json["elapsed_ms"].as_u64().unwrap() < 50_000, "no minute spent waiting: {:#}", card.json);
}

#[test]
fn a_server_that_accepts_once_is_started_again_for_every_probe() {
    let extra: &[&str] = if isolated() { &["--isolated", "--budget", "15s"] } else { &["--budget", "15s"] };
    let Some(card) = check_class("tcp_accept_once.c", extra) else { return };
    // The lecture's client got the one accept; nothing after it was answered.
    card.shows(
        "lecture client",
        "sent \"hello, world\", read once: \"HELLO, WORLD\"; then the server stopped answering",
    );
    card.shows("lecture client", "the program still ran, but answered no new connection; started again");
    card.probed("half-close");
    card.shows("half-close", "after the client's half-close");
    card.shows("start", "started again");
    assert_eq!(card.verdict(), "FAIL");
}

#[test]
fn a_udp_server_that_exits_after_one_datagram_is_charged_once() {
    let Some(card) = check_class("udp_one_datagram.py", &["--udp"]) else { return };
    card.shows("lecture client", "\"HELLO, WORLD\" came back; then the server stopped answering");
    card.shows("lecture client", "the program exited with status 0, saying nothing on stderr; started again");
    // Every probe it answered right is followed by the same exit: charged to the lecture's client.
    card.shows("unicode", "uppercased in full; then the server stopped answering");
    card.shows("unicode", "(as after the lecture's client: charged there, once)");
    assert_eq!((card.status("unicode"), card.charged("unicode")), ("fail", "lecture_client"));
    assert_eq!((card.outcome("unicode"), card.outcome("lecture_client")), ("pass", "fail"));
    assert_eq!(card.outcome("whole_message"), "fail", "its own flaw: a 2,048-byte buffer");
    card.statuses(&[("idle cpu", "pass"), ("restart", "skip"), ("stop", "pass")]);
}

#[test]
fn a_server_that_spins_at_eof_is_seen_burning_cpu_while_idle() {
    // Every connection leaves a thread spinning: a short budget keeps the machine usable.
    let Some(card) = check_class("tcp_spins_at_eof.c", &["--budget", "2s"]) else { return };
    assert_eq!(card.status("idle cpu"), "fail", "{:#}", card.json);
    card.shows("idle cpu", "spins while idle: it kept");
    card.shows("idle cpu", "over 1 s with no client connected");
    assert!(card.advice("idle cpu").contains("when recv returns 0"), "{}", card.advice("idle cpu"));
    assert_eq!((card.outcome("runs_cleanly"), card.points("runs_cleanly")), ("fail", 0.0));
}

#[test]
fn a_thread_per_connection_that_never_ends_is_a_leak() {
    let Some(card) = check_class("tcp_thread_leak.py", &[]) else { return };
    assert_eq!(card.status("threads"), "fail", "{:#}", card.json);
    card.shows("threads", "a thread per connection never ends: 1 thread when it first answered");
    card.statuses(&[("processes", "pass"), ("zombies", "pass"), ("restart", "pass"), ("stop", "pass")]);
}

#[test]
fn children_never_reaped_are_zombies() {
    let Some(card) = check_class("tcp_zombies.c", &[]) else { return };
    assert_eq!(card.status("zombies"), "fail", "{:#}", card.json);
    card.shows("zombies", "child processes ended and were never reaped (zombies");
    assert!(card.advice("zombies").contains("signal(SIGCHLD, SIG_IGN)"));
    card.statuses(&[("processes", "pass"), ("stop", "pass"), ("restart", "warn")]);
    card.shows("restart", "after it was stopped with a client connected: \"bind: Address already in use\"");
}

#[test]
fn a_server_that_ignores_sigterm_has_to_be_killed() {
    let Some(card) = check_class("tcp_ignores_sigterm.py", &[]) else { return };
    assert_eq!(card.status("stop"), "warn", "{:#}", card.json);
    card.shows("stop", "still running 2 s after SIGTERM");
    card.shows("stop", "had to be killed with SIGKILL");
    card.statuses(&[("restart", "pass"), ("zombies", "pass"), ("idle cpu", "pass")]);
}

#[test]
fn a_program_that_never_answers_gets_a_card_saying_why_in_every_format() {
    let port = free_port();
    let silent = check_run("sleep 30", port, &["--budget", "2s"]);
    assert_eq!((silent.verdict(), silent.code), ("CANNOT_RUN", 2));
    let problem = silent.json["problem"].as_str().unwrap();
    assert_eq!(
        problem,
        "`sleep 30` did not start answering within 2s (is it listening on the port it was given?)"
    );
    assert_eq!(silent.evidence("lecture client"), problem);
    silent.statuses(&[("size 1,000", "skip"), ("restart", "skip"), ("stop", "skip")]);
    assert_eq!((silent.json["score"].as_f64(), silent.json["max_score"].as_f64()), (Some(0.0), Some(110.0)));

    let dying = check_run("echo 'server.py: no port given' >&2; exit 2", port, &[]);
    assert_eq!(dying.json["problem"], "`echo 'server.py: no port given' >&2; exit 2` exited with status 2 before it answered: server.py: no port given");

    let Some(server) = Submission::get("correct_server.py") else { return };
    let elsewhere = free_port();
    let wrong_port = check_run(&server.command(elsewhere), port, &["--budget", "2s"]);
    let said = wrong_port.json["problem"].as_str().unwrap();
    assert!(
        said.ends_with(&format!("; it serves TCP port {elsewhere} and UDP port {elsewhere} instead")),
        "{said}"
    );

    let held = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let taken = check_run(&server.command(port), port, &[]);
    let said = taken.json["problem"].as_str().unwrap();
    let me = std::process::id();
    assert!(said.starts_with(&format!("TCP port {port} is already in use by another program (")), "{said}");
    assert!(
        said.contains(&format!(", pid {me}): stop it, or give the program another port (--to)")),
        "{said}"
    );
    drop(held);

    for (format, shows) in [("gradescope", "\"score\": 0.0"), ("junit", "did not start answering within 2s")]
    {
        let mut check = upcase();
        let to = format!("127.0.0.1:{port}");
        check.args(["check", "--run", "sleep 30", "--to", &to, "--budget", "2s", "--format", format]);
        let output = run("upcase check --run", check, b"", CHECK_PATIENCE);
        assert_eq!(output.status.code(), Some(2));
        assert!(output.text().contains(shows), "{format}: {}", output.text());
    }
}
