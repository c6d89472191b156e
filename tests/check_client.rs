//! `upcase check --client`: each client of the class (`tests/peers/class/`), the lecture's own
//! clients and `upcase send` get exactly their verdicts, with the evidence that shows why; every
//! process a client started is gone when its card is done; the card comes out in every format;
//! and a client that cannot be started, or an address already taken, is said so.
//!
//! Every check is bounded by its patience and budget. Needs python3 and gcc (failing under
//! `UPCASE_REQUIRE_TOOLS` without them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use support::submissions::{has, quote, Submission};
use support::PATIENCE;
use upcase::check::client::{self, ClientOptions};
use upcase::check::rubric::Outcome;
use upcase::check::{report, Card, CheckError, Criterion, Status, Verdict};
use upcase::net::Transport;

use Status::{Fail, Pass};

/// Long enough for a client that waits 1 s per try, 5 tries, to give up with no server.
const PATIENT: Duration = Duration::from_secs(8);
/// What a client that waits forever is given: the point is that it is stopped in time.
const IMPATIENT: Duration = Duration::from_secs(3);

/// A port for the server played, free for TCP and UDP on both loopback addresses, and outside
/// the kernel's range of ephemeral ports (32768-60999), so that no client's own socket, here or in
/// a test running beside this one, can take it before the stage binds it.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 100) as u16 * 100;
    for _ in 0..1_000 {
        let port = start + NEXT.fetch_add(1, Ordering::Relaxed) % 10_000;
        // ::1 may be missing (no IPv6): then the stage skips it too.
        let v6_free = |e: std::io::Error| e.kind() == std::io::ErrorKind::AddrNotAvailable;
        let free = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && TcpListener::bind((Ipv6Addr::LOCALHOST, port)).map_or_else(v6_free, |_| true)
            && UdpSocket::bind((Ipv6Addr::LOCALHOST, port)).map_or_else(v6_free, |_| true);
        if free {
            return port;
        }
    }
    panic!("no port free from {start} on");
}

/// Runs the check of a client whose command line is `command(port)`, upcase playing the server at
/// localhost:PORT. A port taken between [`free_port`] and the stage binding it (by a program this
/// test does not control) is not what is tested: another port is tried.
fn check_on_a_free_port(command: impl Fn(u16) -> String, transport: Transport, patience: Duration) -> Card {
    for _ in 0..5 {
        let port = free_port();
        let mut options = ClientOptions::new(command(port), transport);
        options.target = format!("localhost:{port}");
        options.patience = patience;
        match client::run(&options) {
            Err(CheckError::Stage { reason, .. }) if reason.kind() == std::io::ErrorKind::AddrInUse => {
                continue
            }
            result => return result.unwrap_or_else(|e| panic!("{}: {e}", options.command)),
        }
    }
    panic!("five ports in a row were taken as the stage bound them");
}

/// Grades `command PORT` speaking `transport`, given `patience` per scenario, and checks that
/// nothing it started is left running.
fn grade(command: &str, transport: Transport, patience: Duration) -> Card {
    let card = check_on_a_free_port(|port| format!("{command} {port}"), transport, patience);
    let command = card.client.clone().unwrap();
    assert!(left_running(&command).is_empty(), "{command} left {:?} running", left_running(&command));
    card
}

/// The processes whose command line contains `command`.
fn left_running(command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().map(|w| w.trim_matches('\'')).collect();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if words.iter().all(|word| cmdline.contains(word)) {
            found.push(cmdline);
        }
    }
    found
}

fn python(script: &Path) -> Option<String> {
    has("python3", false).then(|| format!("python3 {}", quote(script)))
}

fn lecture(script: &str) -> Option<String> {
    python(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers").join(script))
}

fn class(file: &'static str) -> Option<String> {
    let submission = Submission::get(file)?;
    Some(submission.command(0).trim_end_matches(" 0").to_owned())
}

/// Asserts the rows' names and statuses, in order, showing the card when they differ.
fn assert_rows(card: &Card, expected: &[(&str, Status)]) {
    let got: Vec<(&str, Status)> = card.rows.iter().map(|row| (row.name.as_str(), row.status)).collect();
    assert_eq!(got, expected, "\n{}", report::text(card, false));
}

/// The evidence of a row.
fn evidence<'a>(card: &'a Card, row: &str) -> &'a str {
    &card.rows.iter().find(|r| r.name == row).unwrap_or_else(|| panic!("no row {row}")).evidence
}

/// The outcome of each criterion, in card order.
fn outcomes(card: &Card) -> Vec<(Criterion, Outcome)> {
    card.criteria.iter().map(|grade| (grade.criterion, grade.outcome)).collect()
}

#[test]
fn a_c_client_that_reads_once_prints_half_a_segmented_reply() {
    let Some(command) = class("tcp_client_reads_once.c") else { return };
    let card = grade(&command, Transport::Tcp, PATIENT);
    let rows = [
        ("normal reply", Pass),
        ("late reply", Pass),
        ("segmented reply", Fail),
        ("5,000-byte reply", Fail),
        ("reply not utf-8", Pass),
        ("no server", Pass),
    ];
    assert_rows(&card, &rows);
    let segmented = evidence(&card, "segmented reply");
    assert!(segmented.starts_with("reads once: printed only the first "), "{segmented}");
    let long = evidence(&card, "5,000-byte reply");
    assert!(long.starts_with("sent only 1,023 of the 5,000 bytes"), "{long}");
    assert!(evidence(&card, "reply not utf-8").ends_with("as it came"));
    assert_eq!(evidence(&card, "no server"), "said \"connect: Connection refused\" and exited with status 1");
    let advice = &card.rows[2].advice;
    assert!(advice.contains("recv in a loop until it returns 0") && advice.contains("SHUT_WR"), "{advice}");
    assert_eq!((card.verdict, card.score, card.max_score), (Verdict::Fail, 75.0, 100.0));
}

#[test]
fn a_udp_client_that_waits_forever_is_reported_hanging_within_the_bound() {
    let Some(command) = python(&support::submissions::class_dir().join("udp_client_waits_forever.py")) else {
        return;
    };
    let card = grade(&command, Transport::Udp, IMPATIENT);
    let rows = [
        ("normal reply", Pass),
        ("lost reply", Fail),
        ("late reply", Pass),
        ("5,000-byte reply", Pass),
        ("reply not utf-8", Pass),
        ("no server", Fail),
    ];
    assert_rows(&card, &rows);
    let lost = evidence(&card, "lost reply");
    assert_eq!(
        lost,
        "hangs on a lost datagram: it sent its request once, the reply was lost, and it waited 3s for it without \
         sending again; stopped"
    );
    let advice = &card.rows[1].advice;
    assert!(advice.starts_with("UDP does not resend") && advice.contains("settimeout(1.0)"), "{advice}");
    assert!(!advice.contains("setSoTimeout"), "Python advice only: {advice}");
    assert!(evidence(&card, "reply not utf-8").ends_with("replaced by U+FFFD"));
    // One flaw, no timeout, costs once: the hang with no server is charged to loss.
    let no_server = card.rows.iter().find(|r| r.name == "no server").unwrap();
    assert_eq!(no_server.criterion, Some(Criterion::SurvivesLoss));
    assert!(outcomes(&card).contains(&(Criterion::FailsClearly, Outcome::Pass)));
    assert_eq!(card.score, 75.0);
    // Two hangs of 3 s, and four quick scenarios.
    assert!(card.elapsed_ms < PATIENCE.as_millis() as u64 * 2, "{} ms", card.elapsed_ms);
}

#[test]
fn a_python_client_that_decodes_the_reply_crashes_on_bytes_that_are_not_utf8() {
    let Some(command) = python(&support::submissions::class_dir().join("tcp_client_crashes_on_invalid.py"))
    else {
        return;
    };
    let card = grade(&command, Transport::Tcp, PATIENT);
    let rows = [
        ("normal reply", Pass),
        ("late reply", Pass),
        ("segmented reply", Pass),
        ("5,000-byte reply", Pass),
        ("reply not utf-8", Fail),
        ("no server", Fail),
    ];
    assert_rows(&card, &rows);
    let crash = evidence(&card, "reply not utf-8");
    assert!(
        crash
            .starts_with("crashed on a reply that is not UTF-8 (exited with status 1): UnicodeDecodeError: "),
        "{crash}"
    );
    assert!(crash.contains("tcp_client_crashes_on_invalid.py\", line 27"), "{crash}");
    assert!(card.rows[4].advice.contains("errors='replace'"));
    let no_server = evidence(&card, "no server");
    assert!(no_server.starts_with("a stack trace instead of a message"), "{no_server}");
    assert!(no_server.contains("ConnectionRefusedError"), "{no_server}");
}

#[test]
fn a_udp_client_that_retries_passes_loss() {
    let Some(command) = python(&support::submissions::class_dir().join("udp_client_retries.py")) else {
        return;
    };
    let card = grade(&command, Transport::Udp, PATIENT);
    let rows = [
        ("normal reply", Pass),
        ("lost reply", Pass),
        ("late reply", Pass),
        ("5,000-byte reply", Pass),
        ("reply not utf-8", Pass),
        ("no server", Pass),
    ];
    assert_rows(&card, &rows);
    assert!(evidence(&card, "lost reply").starts_with("sent its request twice"));
    assert!(evidence(&card, "no server").contains("after 5 tries, 1 s each"));
    assert_eq!((card.verdict, card.score), (Verdict::Pass, 100.0));
}

#[test]
fn a_tcp_client_that_reads_all_passes() {
    let Some(command) = python(&support::submissions::class_dir().join("tcp_client_reads_all.py")) else {
        return;
    };
    let card = grade(&command, Transport::Tcp, PATIENT);
    assert_eq!(card.counts.pass, 6, "\n{}", report::text(&card, false));
    assert_eq!((card.verdict, card.score), (Verdict::Pass, 100.0));
}

#[test]
fn the_lecture_udp_client_hangs_cuts_and_crashes() {
    let Some(command) = lecture("udp_client.py") else { return };
    let card = grade(&command, Transport::Udp, IMPATIENT);
    let rows = [
        ("normal reply", Pass),
        ("lost reply", Fail),
        ("late reply", Pass),
        ("5,000-byte reply", Fail),
        ("reply not utf-8", Fail),
        ("no server", Fail),
    ];
    assert_rows(&card, &rows);
    assert!(evidence(&card, "lost reply").starts_with("hangs on a lost datagram"));
    let cut = evidence(&card, "5,000-byte reply");
    assert!(
        cut.starts_with("printed 2,048 of the 5,000 bytes of the reply: its receive buffer holds 2,048"),
        "{cut}"
    );
    assert!(card.rows[3].advice.contains("recvfrom(65535)"));
    assert!(evidence(&card, "reply not utf-8").contains("UnicodeDecodeError"));
    assert_eq!(card.score, 55.0, "\n{}", report::text(&card, false));
}

#[test]
fn the_lecture_tcp_client_reads_once_and_crashes() {
    let Some(command) = lecture("tcp_client.py") else { return };
    let card = grade(&command, Transport::Tcp, PATIENT);
    let rows = [
        ("normal reply", Pass),
        ("late reply", Pass),
        ("segmented reply", Fail),
        ("5,000-byte reply", Fail),
        ("reply not utf-8", Fail),
        ("no server", Fail),
    ];
    assert_rows(&card, &rows);
    let cut = evidence(&card, "5,000-byte reply");
    assert_eq!(cut, "printed 1,024 of the 5,000 bytes of the reply: it reads once, at most 1,024 bytes");
    // Two rows, one flaw: reading once costs "reads the whole reply" once.
    assert_eq!(
        card.criteria.iter().find(|g| g.criterion == Criterion::ReadsTheWholeReply).unwrap().rows.len(),
        2
    );
    assert_eq!(card.score, 45.0);
}

#[test]
fn upcase_send_passes_as_a_client() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let upcase = env!("CARGO_BIN_EXE_upcase");
        let command = |port| format!("{upcase} send --{transport} --to localhost:{port}");
        let card = check_on_a_free_port(command, transport, PATIENT);
        assert_eq!((card.verdict, card.score), (Verdict::Pass, 100.0), "\n{}", report::text(&card, false));
    }
}

#[test]
fn the_card_of_a_client_comes_out_in_every_format() {
    let Some(command) = class("tcp_client_reads_once.c") else { return };
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_upcase"))
        .args(["check", "--format", "json", "--budget", "60s", "--to", &format!("localhost:{port}")])
        .args(["--client", &format!("{command} {port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "FAIL exits 1: {}", String::from_utf8_lossy(&out.stderr));
    let card: Card = serde_json::from_slice(&out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "FAIL");
    let client = json["client"].as_str().unwrap();
    assert!(client.contains("tcp_client_reads_once") && client.ends_with(&format!(" {port}")), "{client}");
    assert_eq!(json["criteria"][2]["criterion"], "reads_the_whole_reply");

    let text = report::text(&card, false);
    assert!(text.starts_with("upcase check --client: `"), "{text}");
    assert!(text.contains("Each scenario ran the client once"), "{text}");
    let results: serde_json::Value = serde_json::from_str(&report::gradescope(&card).unwrap()).unwrap();
    let tests = results["tests"].as_array().unwrap();
    let names: Vec<&str> = tests.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prints the reply",
            "waits for a late reply",
            "reads the whole reply",
            "handles bytes that are not UTF-8",
            "fails clearly with no server"
        ]
    );
    assert_eq!((results["score"].as_f64(), tests[2]["status"].as_str()), (Some(75.0), Some("failed")));
    let junit = report::junit(&card).unwrap();
    let xml = roxmltree::Document::parse(&junit).unwrap();
    let cases: Vec<_> = xml.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 6);
    let failed = cases.iter().filter(|case| case.children().any(|c| c.has_tag_name("failure"))).count();
    assert_eq!(failed, 2);
}

#[test]
fn a_client_that_cannot_start_or_a_taken_address_is_said_so() {
    let mut options = ClientOptions::new("true", Transport::Tcp);
    options.dir = Some("/nonexistent/submission".into());
    // A client that does nothing earns nothing.
    let card = check_on_a_free_port(|_| "true".to_owned(), Transport::Tcp, PATIENT);
    assert_eq!((card.verdict, card.score), (Verdict::Fail, 0.0), "\n{}", report::text(&card, false));
    assert_eq!(
        card.rows[0].evidence,
        format!("exited with status 0 without sending anything to {}", card.target)
    );
    options.target = format!("localhost:{}", free_port());
    let card = client::run(&options).unwrap();
    assert_eq!(card.verdict, Verdict::CannotRun);
    assert!(card.rows[0].evidence.contains("/nonexistent/submission"), "{:?}", card.rows[0]);
    assert!(card.rows[1..].iter().all(|row| row.status == Status::Skip));

    let taken = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut options = ClientOptions::new("true", Transport::Udp);
    options.target = taken.local_addr().unwrap().to_string();
    match client::run(&options) {
        Err(error @ CheckError::Stage { .. }) => {
            assert!(error.to_string().contains("a server already runs there"))
        }
        other => panic!("{other:?}"),
    }
}
