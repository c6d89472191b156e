//! Ctrl-C or SIGTERM to a command that starts programs under test (`check --run`, `check
//! --client`, `grade`) stops every program it started, and the command exits with 130: nothing a
//! grader starts outlives it.
//!
//! Each program under test here writes its process id to a file and then waits a minute; the
//! signal comes once the file is there, so the program is surely running when upcase is stopped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::submissions::{eventually, free_port, running};
use support::*;

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("upcase-interrupted-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A shell command that writes its process id to `pid_file` and then sleeps a minute, as the same
/// process (`exec`), so that the id written is the one to look for afterwards.
fn waits_a_minute(pid_file: &Path) -> String {
    format!("echo $$ > {}; exec sleep 60", pid_file.display())
}

/// Starts `upcase ARGS`, waits for the program under test to write `pid_file`, sends `signal` to
/// upcase, and checks that upcase exits with 130 and that the program is gone.
fn stopped_with_everything_it_started(args: &[&str], pid_file: &Path, signal: &str) {
    let mut command = upcase();
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut upcase = Guard::spawn("upcase", &mut command);
    let deadline = Instant::now() + PATIENCE;
    let pid = loop {
        let written = std::fs::read_to_string(pid_file).ok();
        if let Some(pid) = written.and_then(|text| text.trim().parse::<u32>().ok()) {
            break pid;
        }
        assert!(
            upcase.is_running(),
            "upcase ended before the program under test started:\n{}",
            upcase.stderr()
        );
        assert!(Instant::now() < deadline, "the program under test never started:\n{}", upcase.stderr());
        thread::sleep(Duration::from_millis(20));
    };
    assert!(running(pid), "the program under test ({pid}) is not running");
    let sent = Command::new("kill").args([signal, &upcase.pid().to_string()]).status().unwrap();
    assert!(sent.success());
    let status = upcase.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(130), "upcase {args:?} after {signal}:\n{}", upcase.stderr());
    assert!(upcase.stderr().contains("stopped every program under test"), "{}", upcase.stderr());
    assert!(eventually(|| !running(pid)), "{pid} still running after upcase {args:?} was stopped");
}

/// `upcase check --to ADDR FLAG PROGRAM` (`--run` or `--client`), stopped with `signal`.
fn check_stops_what_it_started(name: &str, flag: &str, signal: &str) {
    let pid_file = scratch(name).join("pid");
    let to = format!("127.0.0.1:{}", free_port());
    let program = waits_a_minute(&pid_file);
    stopped_with_everything_it_started(&["check", "--to", &to, flag, &program], &pid_file, signal);
}

#[test]
fn check_run_stops_the_server_it_started() {
    check_stops_what_it_started("run", "--run", "-TERM");
}

#[test]
fn check_client_stops_the_client_it_started() {
    check_stops_what_it_started("client", "--client", "-INT");
}

#[test]
fn grade_stops_the_submission_it_started() {
    let dir = scratch("grade");
    let pid_file = dir.join("pid");
    let program = waits_a_minute(&pid_file);
    let class = format!(
        "[[submission]]\nname = \"stuck\"\nserver = \"{}\"\ntransport = \"tcp\"\nto = \"127.0.0.1:{}\"\n",
        program.replace('\\', "\\\\").replace('"', "\\\""),
        free_port()
    );
    std::fs::write(dir.join("CLASS.toml"), class).unwrap();
    let class_file = dir.join("CLASS.toml").display().to_string();
    let out = dir.join("out").display().to_string();
    stopped_with_everything_it_started(&["grade", &class_file, "--out", &out], &pid_file, "-TERM");
}
