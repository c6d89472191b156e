//! A run of the client in one scenario, turned into its row: what it printed, how it ended, what
//! it said as it died (its last words), and what the server played saw it send; then the rows
//! looked at together, so that one flaw costs once.
//!
//! Judging only: nothing here runs the client or touches a socket.

use std::time::Duration;

use super::advice::Language;
use super::scenario::{Scenario, LATE_BY, SEGMENT_PAUSE};
use super::stage::Seen;
use crate::check::card::{Row, Status};
use crate::check::program::{last_words, Exit, Output};
use crate::check::Criterion;
use crate::format::{excerpt, thousands};
use crate::net::Transport;

/// The lecture's prompt, which is not a message.
const PROMPT: &str = "Input lowercase sentence:";
/// The most of what a client said that a row quotes.
const QUOTED: usize = 160;

/// One run of the client.
#[derive(Debug, Clone)]
pub(super) struct Run {
    /// How it ended by itself; `None`: it was still running at the bound, and was stopped.
    pub(super) exit: Option<Exit>,
    pub(super) stdout: Output,
    pub(super) stderr: Output,
    /// How long the scenario gave it.
    pub(super) bound: Duration,
    /// What the server played saw it send.
    pub(super) seen: Seen,
}

impl Run {
    /// Its stack trace's error and line, when it died of an exception or a signal.
    fn crash(&self) -> Option<String> {
        let exit = self.exit.as_ref()?;
        let stderr = self.stderr.text();
        let traced = ["Traceback (most recent call last)", "Exception in thread", "panicked at"]
            .iter()
            .any(|mark| stderr.contains(mark));
        if let Some(signal) = exit.signal_name().filter(|_| !traced) {
            return Some(format!("killed by {signal}"));
        }
        if !traced {
            return None;
        }
        let words = last_words(&stderr);
        let error = words.error.unwrap_or_else(|| "a stack trace".to_owned());
        Some(match words.location {
            Some(location) => format!("{} ({location})", quote(&error)),
            None => quote(&error),
        })
    }

    /// What it said last: the error on stderr, or the last line on stdout that is not the prompt.
    fn said(&self) -> Option<String> {
        let stderr = last_words(&self.stderr.text()).error;
        let stdout = self.stdout.text();
        let line = || {
            let line =
                stdout.lines().map(|line| line.replace(PROMPT, "")).rfind(|line| !line.trim().is_empty())?;
            Some(line.trim().to_owned())
        };
        stderr.or_else(line).map(|said| quote(&said))
    }

    /// How many requests it sent, in words.
    fn sent(&self) -> String {
        match self.seen.requests {
            1 => "once".to_owned(),
            2 => "twice".to_owned(),
            n => format!("{n} times"),
        }
    }
}

/// `1.5 s`.
fn seconds(span: Duration) -> String {
    format!("{:.1} s", span.as_secs_f64())
}

/// At most [`QUOTED`] characters of `text`, on one line.
fn quote(text: &str) -> String {
    let line = text.replace('\n', " ");
    match line.char_indices().nth(QUOTED) {
        Some((at, _)) => format!("{}…", line.get(..at).unwrap_or_default()),
        None => line,
    }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|window| window == needle)
}

/// The longest start of `expected` that `printed` holds somewhere.
fn printed_prefix(printed: &[u8], expected: &[u8]) -> usize {
    let Some(&first) = expected.first() else { return 0 };
    (0..printed.len())
        .filter(|&at| printed.get(at) == Some(&first))
        .map(|at| {
            let rest = printed.get(at..).unwrap_or_default();
            rest.iter().zip(expected).take_while(|(a, b)| a == b).count()
        })
        .max()
        .unwrap_or(0)
}

/// The fragments a client must print of the reply that is not UTF-8, whatever it makes of 0xC9.
const NOT_UTF8_AROUND: [&[u8]; 2] = [b"CAF", b" AU LAIT"];

/// Whether the client printed the scenario's reply.
fn printed(scenario: Scenario, stdout: &[u8]) -> bool {
    match scenario {
        Scenario::NotUtf8 => NOT_UTF8_AROUND.iter().all(|part| contains(stdout, part)),
        _ => contains(stdout, &scenario.expected()),
    }
}

/// The row of `scenario`, from its run. `target`: where the server was played.
pub(super) fn row(
    scenario: Scenario,
    run: &Run,
    transport: Transport,
    target: &str,
    language: Language,
) -> Row {
    let name = scenario.name();
    let row = |status, evidence: String, advice: &str| Row::new(name, status, evidence, advice);
    if scenario == Scenario::NoServer {
        return no_server(run, transport, target, language);
    }
    let expected = scenario.expected();
    let whole = printed(scenario, &run.stdout.bytes);
    let bound = humantime::format_duration(run.bound);
    let Some(exit) = &run.exit else {
        return if whole {
            row(
                Status::Warn,
                format!("printed the reply, then was still running after {bound}: stopped"),
                &language.exit_when_done(),
            )
        } else if scenario == Scenario::Lost && run.seen.replies == 0 {
            let evidence = format!(
                "hangs on a lost datagram: it sent its request {}, the reply was lost, and it waited {bound} for it \
                 without sending again; stopped",
                run.sent()
            );
            row(Status::Fail, evidence, &language.set_a_timeout_and_retry())
        } else if run.seen.requests == 0 {
            let evidence = format!("sent nothing to {target} in {bound}, and was still running: stopped");
            row(Status::Fail, evidence, "Send the sentence read on stdin to the address the client is given.")
        } else {
            let evidence =
                format!("printed no reply in {bound}, though {} came: stopped", thousands(run.seen.replies));
            row(Status::Fail, evidence, &advice_for(scenario, transport, language))
        };
    };
    if let Some(crash) = run.crash().filter(|_| !whole) {
        let evidence = match scenario {
            Scenario::NotUtf8 => format!("crashed on a reply that is not UTF-8 ({exit}): {crash}"),
            _ => format!("crashed ({exit}): {crash}"),
        };
        return row(Status::Fail, evidence, &advice_for(scenario, transport, language));
    }
    if whole {
        let said = run.said().map(|said| format!(", saying \"{said}\"")).unwrap_or_default();
        return match exit.code {
            Some(0) => row(Status::Pass, passed(scenario, run), ""),
            _ => row(
                Status::Warn,
                format!("printed the reply, but {exit}{said}"),
                "Exit with status 0 when the reply came.",
            ),
        };
    }
    let said = run.said().map(|said| format!(": \"{said}\"")).unwrap_or_default();
    let first_len = run.seen.first.as_ref().map_or(0, Vec::len);
    let shown = printed_prefix(&run.stdout.bytes, &expected);
    let (n, p) = (thousands(expected.len()), thousands(shown));
    let (evidence, advice) = if run.seen.requests == 0 {
        let evidence = format!("{exit} without sending anything to {target}{said}");
        (evidence, "Send the sentence read on stdin to the address the client is given.".to_owned())
    } else if scenario == Scenario::Lost && run.seen.requests == 1 {
        (
            format!("gave up after the reply was lost, without sending again ({exit}){said}"),
            language.set_a_timeout_and_retry(),
        )
    } else if scenario == Scenario::Late {
        let late = seconds(LATE_BY);
        (
            format!("gave up before the reply came, {late} after the request ({exit}){said}"),
            language.wait_longer(),
        )
    } else if shown > 0 && first_len < scenario.sentence().len() {
        let evidence = format!(
            "sent only {} of the {} bytes of the line it was given, so the reply it printed has {p} bytes",
            thousands(first_len),
            thousands(scenario.sentence().len())
        );
        (evidence, language.read_the_whole_line())
    } else if shown > 0 && scenario == Scenario::Segmented {
        let pause = humantime::format_duration(SEGMENT_PAUSE);
        let evidence = format!(
            "reads once: printed only the first {p} of {n} bytes; the reply came in segments {pause} apart"
        );
        (evidence, language.read_until_closed())
    } else if shown > 0 && scenario == Scenario::Long {
        let evidence = match transport {
            Transport::Tcp => format!("printed {p} of the {n} bytes of the reply: it reads once, at most {p} bytes"),
            Transport::Udp => format!(
                "printed {p} of the {n} bytes of the reply: its receive buffer holds {p} bytes, and the rest of \
                 the datagram is lost"
            ),
        };
        (evidence, advice_for(scenario, transport, language))
    } else if shown > 0 {
        (
            format!("printed only {p} of the {n} bytes of the reply ({exit})"),
            advice_for(scenario, transport, language),
        )
    } else {
        let shown =
            excerpt(run.stdout.bytes.get(run.stdout.bytes.len().saturating_sub(24)..).unwrap_or_default());
        (
            format!("did not print the reply ({exit}; stdout ends {shown}){said}"),
            advice_for(scenario, transport, language),
        )
    };
    row(Status::Fail, evidence, &advice)
}

/// What a pass says happened.
fn passed(scenario: Scenario, run: &Run) -> String {
    match scenario {
        Scenario::Lost => {
            format!("sent its request {}: the first reply was lost, a later one printed", run.sent())
        }
        Scenario::Late => format!("waited {} for the reply and printed it", seconds(LATE_BY)),
        Scenario::Segmented => "printed the whole reply, sent in segments with pauses".to_owned(),
        Scenario::Long => format!("printed all {} bytes of the reply", thousands(scenario.expected().len())),
        Scenario::NotUtf8 => format!("printed the reply, with the byte 0xC9 {}", shown_as(&run.stdout.bytes)),
        _ => format!("printed the reply {} and exited with status 0", excerpt(&scenario.expected())),
    }
}

/// How a client printed the byte 0xC9 between `CAF` and ` AU LAIT`.
fn shown_as(stdout: &[u8]) -> String {
    let [before, after] = NOT_UTF8_AROUND;
    let start = (0..stdout.len()).find(|&at| stdout.get(at..).is_some_and(|rest| rest.starts_with(before)));
    let between = start.and_then(|start| {
        let rest = stdout.get(start + before.len()..)?;
        let end = (0..rest.len()).find(|&at| rest.get(at..).is_some_and(|r| r.starts_with(after)))?;
        rest.get(..end)
    });
    match between.unwrap_or_default() {
        b"\xC9" => "as it came".to_owned(),
        b"\xEF\xBF\xBD" => "replaced by U+FFFD".to_owned(),
        b"\xC3\x89" => "read as Latin-1 (É)".to_owned(),
        other if contains(other, b"\\x") || contains(other, b"\\u") => {
            format!("escaped as {}", excerpt(other))
        }
        other => format!("shown as {}", excerpt(other)),
    }
}

/// The advice for a client that failed `scenario`.
fn advice_for(scenario: Scenario, transport: Transport, language: Language) -> String {
    match scenario {
        Scenario::Lost => language.set_a_timeout_and_retry(),
        Scenario::Late => language.wait_longer(),
        Scenario::Segmented => language.read_until_closed(),
        Scenario::Long if transport == Transport::Udp => language.receive_whole_datagrams(),
        Scenario::Long => language.read_until_closed(),
        Scenario::NotUtf8 => language.survive_bad_bytes(),
        Scenario::NoServer => language.fail_clearly(),
        Scenario::Normal => {
            "Fix what its output and last words point at, then try the lecture's exchange by hand \
                             against `upcase serve`."
                .to_owned()
        }
    }
}

/// The row of the scenario with no server at all.
fn no_server(run: &Run, transport: Transport, target: &str, language: Language) -> Row {
    let name = Scenario::NoServer.name();
    let bound = humantime::format_duration(run.bound);
    let (status, evidence, advice) = match (&run.exit, run.crash(), run.said()) {
        (None, ..) => {
            let advice = match transport {
                Transport::Udp => {
                    format!("{} {}", language.set_a_timeout_and_retry(), language.fail_clearly())
                }
                Transport::Tcp => language.fail_clearly(),
            };
            (
                Status::Fail,
                format!("with nothing at {target}, it waited {bound}, saying nothing: stopped"),
                advice,
            )
        }
        (Some(exit), Some(crash), _) => (
            Status::Fail,
            format!("a stack trace instead of a message ({exit}): {crash}"),
            language.fail_clearly(),
        ),
        (Some(exit), None, said) if exit.code == Some(0) => {
            let said = said.map(|said| format!(", saying \"{said}\"")).unwrap_or_default();
            let evidence = format!(
                "exited with status 0 with nothing at {target}{said}: a script cannot tell it failed"
            );
            (Status::Fail, evidence, language.fail_clearly())
        }
        (Some(exit), None, Some(said)) => {
            (Status::Pass, format!("said \"{said}\" and {exit}"), String::new())
        }
        (Some(exit), None, None) => {
            (Status::Warn, format!("{exit}, saying nothing"), language.fail_clearly())
        }
    };
    Row::new(name, status, evidence, &advice)
}

/// Charges a flaw that two rows show to one criterion: a UDP client without a timeout hangs both
/// on a lost reply and with no server, which costs "survives a lost datagram" once, not also
/// "fails clearly". (A client that never sends anything fails every scenario: that is not one
/// flaw seen twice, it is nothing done, and it earns nothing.)
pub(super) fn charge_once(rows: &mut [Row], runs: &[(Scenario, Run)]) {
    let hangs = |wanted| runs.iter().any(|(scenario, run)| *scenario == wanted && run.exit.is_none());
    let lost_unanswered =
        runs.iter().any(|(scenario, run)| *scenario == Scenario::Lost && run.seen.replies == 0);
    if !(hangs(Scenario::Lost) && lost_unanswered && hangs(Scenario::NoServer)) {
        return;
    }
    for row in
        rows.iter_mut().filter(|row| row.name == Scenario::NoServer.name() && row.status == Status::Fail)
    {
        *row = row.clone().charged_to(Criterion::SurvivesLoss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_start_of_a_reply_is_found_anywhere_in_stdout() {
        assert_eq!(printed_prefix(b"From Server: THE QUICK brown", b"THE QUICK BROWN"), 10);
        assert_eq!(printed_prefix(b"T THE QUICK BROWN FOX!", b"THE QUICK BROWN"), 15);
        assert_eq!(printed_prefix(b"nothing", b"HELLO"), 0);
        assert_eq!(printed_prefix(b"", b"HELLO"), 0);
    }

    #[test]
    fn how_a_byte_that_is_not_utf8_was_printed() {
        assert_eq!(shown_as(b"From Server: CAF\xC9 AU LAIT\n"), "as it came");
        assert_eq!(shown_as("CAF\u{FFFD} AU LAIT".as_bytes()), "replaced by U+FFFD");
        assert_eq!(shown_as(b"b'CAF\\xc9 AU LAIT'"), "escaped as \"\\\\xc9\"");
        assert_eq!(shown_as("CAFÉ AU LAIT".as_bytes()), "read as Latin-1 (É)");
        assert!(printed(Scenario::NotUtf8, b"CAF? AU LAIT") && !printed(Scenario::NotUtf8, b"CAF"));
    }

    #[test]
    fn what_a_client_said_is_quoted_on_one_line_and_short() {
        assert_eq!(quote("a\nb"), "a b");
        assert_eq!(quote(&"x".repeat(500)).chars().count(), QUOTED + 1);
    }
}
