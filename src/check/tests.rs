//! The check's own mechanisms: the waits bounded by the budget, the first message written in
//! the encoding graded.

use super::*;

#[test]
fn waits_never_outlast_the_budget() {
    let (timeout, budget) = (Duration::from_secs(5), Duration::from_millis(200));
    let ctx = Ctx::for_test(timeout, budget, None, Instant::now());
    assert!(ctx.wait() <= Duration::from_millis(200));
    assert!(ctx.until(Duration::from_secs(60)) <= ctx.deadline.get());
    let spent = Ctx::for_test(timeout, budget, None, Instant::now() - Duration::from_secs(1));
    assert!(spent.spent());
    assert_eq!(spent.wait(), Duration::from_millis(1), "a zero wait would block forever");
}

#[test]
fn the_round_trip_is_written_in_the_encoding_graded() {
    let ctx =
        |encoding| Ctx::for_test(Duration::from_secs(1), Duration::from_secs(30), encoding, Instant::now());
    let utf8 = ctx(None);
    assert_eq!(utf8.hello, b"hello, world");
    assert_eq!(utf8.hello_reply, b"HELLO, WORLD");
    let utf16 = ctx(Some(Encoding::Utf16Le));
    assert_eq!(utf16.hello.len(), 24);
    assert_eq!(utf16.hello_reply.get(..2), Some(&b"H\0"[..]));
}

#[test]
fn messages_sent_are_kept_as_one_buffer_would_hold_them() {
    let ctx = Ctx::for_test(Duration::from_secs(1), Duration::from_secs(30), None, Instant::now());
    ctx.remember(b"the quick brown fox");
    ctx.remember(b"jumps over");
    ctx.remember(b"hi");
    assert_eq!(ctx.sent_at(2, 100), b"mps overbrown fox");
    assert_eq!(ctx.longest_sent(), 19);
    assert!(ctx.sent_at(50, 10).is_empty());
}

#[test]
fn every_probe_row_belongs_to_a_criterion() {
    let names = tcp::PROBES.iter().chain(udp::PROBES).map(|(name, _)| *name).chain([FIRST]);
    for name in names {
        assert!(Criterion::for_row(name).is_some(), "{name}");
    }
}
