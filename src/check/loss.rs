//! UDP under loss: 200 numbered requests, at most 32 in flight, each resent up to 3 times when
//! its reply does not come within the timeout, as a careful client would. Reports how many went
//! unanswered at the first try and after the retries.
//!
//! Thresholds: pass when every request was answered at the first try; warn when some needed a
//! retry, or fewer than one in ten were never answered; fail when one in ten or more were never
//! answered, or a reply matched no request. The probe ends within six timeouts: four tries take
//! four, and the window keeps the rest in flight alongside.

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use super::{wire, Ctx, Row, Status};
use crate::format::percent;

/// Requests sent.
const REQUESTS: usize = 200;
/// Requests awaiting a reply at once: few enough that no healthy server's receive buffer
/// overflows, so on loopback any loss is the server's.
const WINDOW: usize = 32;
/// Resends of a request after its first try.
const RETRIES: u32 = 3;

/// Where one request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Unsent,
    /// Sent `tries` times, the last at `at`.
    Waiting {
        tries: u32,
        at: Instant,
    },
    /// Answered; `tries` is the try whose wait the reply ended.
    Answered {
        tries: u32,
    },
    /// Every try went unanswered.
    Lost,
}

/// How the requests fared.
#[derive(Debug, Default)]
struct Tally {
    first_try: usize,
    after_retry: usize,
    never: usize,
    /// Replies that matched no request.
    wrong: usize,
    /// Why the probe stopped early, if it did.
    stopped: Option<String>,
}

/// UDP: the loss probe.
pub(super) fn loss(ctx: &Ctx) -> Row {
    let name = "loss";
    match wire::udp_socket(ctx).and_then(|socket| run(ctx, &socket)) {
        Ok(tally) => judge(&tally),
        Err(e) => Row::new(name, Status::Skip, format!("cannot probe: {e}"), ""),
    }
}

/// The text of request `n`.
fn request(n: usize) -> String {
    format!("loss {n:03} hello")
}

fn run(ctx: &Ctx, socket: &std::net::UdpSocket) -> io::Result<Tally> {
    let messages: Vec<Vec<u8>> = (0..REQUESTS).map(|n| ctx.text(&request(n))).collect();
    let replies: HashMap<Vec<u8>, usize> =
        messages.iter().enumerate().map(|(n, message)| (ctx.upper(message), n)).collect();
    // A reply is matched by its start with a-z uppercased, so that a flaw every reply shows
    // (NUL padding, stale bytes, a letter left lowercase) is charged once, by the text probes.
    let key_len = replies.keys().map(Vec::len).min().unwrap_or(0);
    let key = |reply: &[u8]| reply.get(..key_len).map(<[u8]>::to_ascii_uppercase);
    let mut fates = vec![Fate::Unsent; REQUESTS];
    let mut tally = Tally::default();
    let deadline = ctx.until(ctx.timeout * 6);
    let mut next = 0;
    loop {
        let now = Instant::now();
        // Resend what waited a whole timeout, give up on what has had every try, fill the window.
        for (n, fate) in fates.iter_mut().enumerate() {
            if let Fate::Waiting { tries, at } = *fate {
                if now.duration_since(at) >= ctx.timeout {
                    *fate = if tries > RETRIES {
                        Fate::Lost
                    } else {
                        Fate::Waiting { tries: tries + 1, at: now }
                    };
                    if let (Fate::Waiting { .. }, Some(message)) = (*fate, messages.get(n)) {
                        ctx.remember(message);
                        socket.send(message)?;
                    }
                }
            }
        }
        let mut waiting = fates.iter().filter(|fate| matches!(fate, Fate::Waiting { .. })).count();
        while waiting < WINDOW && next < REQUESTS {
            if let (Some(fate), Some(message)) = (fates.get_mut(next), messages.get(next)) {
                ctx.remember(message);
                socket.send(message)?;
                *fate = Fate::Waiting { tries: 1, at: now };
            }
            next += 1;
            waiting += 1;
        }
        if waiting == 0 {
            break;
        }
        if now >= deadline {
            tally.stopped = Some(format!("the probe's {:?} ran out", ctx.timeout * 6));
            break;
        }
        // Wait for a reply until the oldest request's try runs out.
        let oldest = fates
            .iter()
            .filter_map(|fate| match fate {
                Fate::Waiting { at, .. } => Some(*at),
                _ => None,
            })
            .min()
            .unwrap_or(now);
        let wait = (oldest + ctx.timeout).min(deadline).saturating_duration_since(now);
        socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match wire::udp_recv(socket) {
            Ok(Some(reply)) => {
                match key(&reply).and_then(|key| replies.get(&key)).and_then(|&n| fates.get_mut(n)) {
                    Some(fate) => {
                        if let Fate::Waiting { tries, .. } = *fate {
                            *fate = Fate::Answered { tries };
                        }
                    }
                    None => tally.wrong += 1,
                }
            }
            Ok(None) => {}
            // Refused (ICMP port unreachable): the server is gone; nothing more will come.
            Err(e) => {
                tally.stopped = Some(format!("receiving failed: {e}"));
                break;
            }
        }
    }
    for fate in fates {
        match fate {
            Fate::Answered { tries: 1 } => tally.first_try += 1,
            Fate::Answered { .. } => tally.after_retry += 1,
            _ => tally.never += 1,
        }
    }
    Ok(tally)
}

fn judge(tally: &Tally) -> Row {
    let name = "loss";
    let before = percent(REQUESTS - tally.first_try, REQUESTS);
    let after = percent(tally.never, REQUESTS);
    let stopped = tally.stopped.as_ref().map(|why| format!(" (stopped early: {why})")).unwrap_or_default();
    let head = format!("{REQUESTS} requests, {WINDOW} in flight");
    if tally.wrong > 0 {
        return Row::new(
            name,
            Status::Fail,
            format!("{head}: {} replies matched no request", tally.wrong),
            "Reply to each datagram with the uppercase of that datagram alone.",
        );
    }
    if tally.first_try == REQUESTS {
        return Row::new(name, Status::Pass, format!("{head}: every one answered at the first try"), "");
    }
    let evidence = format!(
        "{head}: {before} unanswered at the first try, {after} after up to {RETRIES} retries ({} answered \
         only after a retry, {} never){stopped}",
        tally.after_retry, tally.never
    );
    if tally.never * 10 >= REQUESTS {
        return Row::new(
            name,
            Status::Fail,
            evidence,
            "Answer every datagram; a client can only retry so often.",
        );
    }
    Row::new(
        name,
        Status::Warn,
        evidence,
        "Datagrams were lost: clients must retry. On loopback the loss is the server's own (a full \
         receive buffer, a dropped request): read faster, or with a larger SO_RCVBUF.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_thresholds() {
        let clean = Tally { first_try: REQUESTS, ..Tally::default() };
        assert_eq!(judge(&clean).status, Status::Pass);
        let recovered = Tally { first_try: 150, after_retry: 50, ..Tally::default() };
        let row = judge(&recovered);
        assert_eq!(row.status, Status::Warn);
        assert_eq!(
            row.evidence,
            "200 requests, 32 in flight: 25.0% unanswered at the first try, 0.0% after up to 3 retries \
             (50 answered only after a retry, 0 never)"
        );
        let few = Tally { first_try: 190, never: 10, ..Tally::default() };
        assert_eq!(judge(&few).status, Status::Warn);
        let many = Tally { first_try: 170, after_retry: 10, never: 20, ..Tally::default() };
        assert_eq!(judge(&many).status, Status::Fail);
        let wrong = Tally { first_try: REQUESTS, wrong: 1, ..Tally::default() };
        assert_eq!(judge(&wrong).status, Status::Fail);
    }
}
