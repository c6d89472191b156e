//! The classic wrong replies, each recognised and said as a student can act on it, on slices.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn ctx(transport: Transport) -> Ctx {
    Ctx {
        transport,
        ..Ctx::for_test(Duration::from_millis(500), Duration::from_secs(30), None, Instant::now())
    }
}

fn evidence(ctx: &Ctx, message: &[u8], reply: &[u8]) -> (Diagnosis, String) {
    let diagnosis = diagnose(ctx, message, reply);
    let evidence = diagnosis.evidence(ctx, message, reply);
    (diagnosis, evidence)
}

/// A message of `len` bytes, as the size probes send.
fn sized(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog ".iter().copied().cycle().take(len).collect()
}

#[test]
fn the_whole_buffer_is_named_with_its_size() {
    let ctx = ctx(Transport::Tcp);
    let reply = [&b"HELLO, WORLD"[..], &[0; 1012]].concat();
    let (diagnosis, evidence) = evidence(&ctx, b"hello, world", &reply);
    assert_eq!((diagnosis.content, diagnosis.extra), (Content::Correct, Some(Extra::Nul { nuls: 1012 })));
    assert_eq!(
        evidence,
        "the reply is followed by 1,012 NUL bytes: the server sent its whole 1,024-byte buffer instead of the \
         12 bytes it received"
    );
    assert!(diagnosis.every_reply());
    assert!(diagnosis.advice(Transport::Udp).contains("new String(packet.getData(), 0, packet.getLength()"));
    assert!(diagnosis.advice(Transport::Tcp).contains("not sizeof buf"));
}

#[test]
fn stale_bytes_of_a_longer_message_are_recognised_as_sent_or_uppercased_in_place() {
    let ctx = ctx(Transport::Udp);
    let long = sized(1000);
    ctx.remember(&long);
    ctx.remember(b"hello, world");
    for tail in
        [long.get(12..).unwrap_or_default().to_vec(), long.get(12..).unwrap_or_default().to_ascii_uppercase()]
    {
        let reply = [&b"HELLO, WORLD"[..], &tail].concat();
        let (diagnosis, evidence) = evidence(&ctx, b"hello, world", &reply);
        assert_eq!(diagnosis.extra, Some(Extra::Stale { stale: 988, nuls: 0 }));
        assert!(
            evidence.starts_with("the reply is followed by 988 bytes left from earlier, longer messages (\""),
            "{evidence}"
        );
        assert!(evidence
            .ends_with("sends more than the 12 bytes it received; its buffer holds at least 1,000 bytes"));
        assert_eq!(diagnosis.advice(Transport::Udp), STALE);
    }
}

#[test]
fn stale_bytes_name_the_buffer_a_longer_message_filled_or_the_nuls_after_them() {
    let filled = ctx(Transport::Udp);
    filled.remember(&sized(30_000));
    filled.remember(b"hello, world");
    let buffer = filled.sent_at(0, 2048);
    let reply = [&b"HELLO, WORLD"[..], buffer.get(12..).unwrap_or_default()].concat();
    let (_, said) = evidence(&filled, b"hello, world", &reply);
    assert!(said.ends_with("a longer message filled its 2,048-byte buffer"), "{said}");
    let padded = ctx(Transport::Udp);
    padded.remember(&sized(100));
    padded.remember(b"hello, world");
    let reply = [&b"HELLO, WORLD"[..], sized(100).get(12..).unwrap_or_default(), &[0; 924]].concat();
    let (diagnosis, said) = evidence(&padded, b"hello, world", &reply);
    assert_eq!(diagnosis.extra, Some(Extra::Stale { stale: 88, nuls: 924 }));
    assert!(said.ends_with("then 924 NUL bytes: all of its 1,024-byte buffer"), "{said}");
}

#[test]
fn bytes_that_follow_but_were_never_sent_are_not_called_stale() {
    let ctx = ctx(Transport::Tcp);
    ctx.remember(b"hello, world");
    let (diagnosis, evidence) = evidence(&ctx, b"hello, world", b"HELLO, WORLD and more");
    assert_eq!(diagnosis.content, Content::Other);
    assert_eq!(evidence, "wrong reply: \"HELLO, WORLD and more\", not \"HELLO, WORLD\"");
    assert!(!diagnosis.every_reply());
}

#[test]
fn the_last_byte_left_lowercase_the_first_line_and_no_uppercasing_are_told_apart() {
    let ctx = ctx(Transport::Tcp);
    let (last, said) = evidence(&ctx, b"hello, world", b"HELLO, WORLd");
    assert_eq!(last.content, Content::LastByteKept);
    assert_eq!(said, "the last byte was not uppercased: got \"HELLO, WORLd\"");
    assert!(last.every_reply());
    let lines = b"first line\nsecond line\n";
    for reply in [&b"FIRST LINE\n"[..], b"FIRST LINE"] {
        let (first, said) = evidence(&ctx, lines, reply);
        assert_eq!(first.content, Content::FirstLine, "{said}");
        assert!(said.starts_with("only the first line came back"), "{said}");
        assert!(!first.every_reply());
        assert!(first.advice(Transport::Tcp).contains("not readLine()"));
    }
    let (echo, said) = evidence(&ctx, b"hello, world", b"hello, world");
    assert_eq!(echo.content, Content::Unchanged);
    assert_eq!(said, "the message came back as it was sent, not uppercased");
}

#[test]
fn a_cut_names_the_buffer_only_when_it_looks_like_one() {
    let tcp = ctx(Transport::Tcp);
    let message = sized(1025);
    let want = tcp.upper(&message);
    let (cut, said) = evidence(&tcp, &message, want.get(..1024).unwrap_or_default());
    assert_eq!(cut.content, Content::Cut { at: 1024 });
    assert_eq!(said, "cut at 1,024 bytes: the server reads once, with a 1,024-byte buffer");
    assert!(cut.advice(Transport::Tcp).starts_with("Read until the client half-closes"));
    let (_, said) = evidence(&tcp, b"hello, world", b"H");
    assert_eq!(said, "cut at 1 byte: the server answered what its first read returned, and no more");
    let udp = ctx(Transport::Udp);
    let (cut, said) = evidence(&udp, &message, want.get(..1000).unwrap_or_default());
    assert_eq!(said, "cut at 1,000 bytes: the server receives into a 1,000-byte buffer, and a longer datagram is cut to fit");
    assert!(cut.advice(Transport::Udp).contains("recvfrom(65535)"));
}

#[test]
fn ascii_only_is_told_with_the_advice_for_every_language() {
    let ctx = ctx(Transport::Tcp);
    let message = "straße привет".as_bytes();
    let (ascii, said) = evidence(&ctx, message, "STRAßE привет".as_bytes());
    assert_eq!(ascii.content, Content::AsciiOnly);
    assert_eq!(said, "only a-z were uppercased: got \"STRAßE привет\"");
    let advice = ascii.advice(Transport::Tcp);
    for language in ["str.upper()", "toUpperCase(Locale.ROOT)", "toupper works per byte"] {
        assert!(advice.contains(language), "{advice}");
    }
}

#[test]
fn in_utf16_nul_bytes_are_text_not_padding() {
    let ctx = Ctx {
        transport: Transport::Tcp,
        ..Ctx::for_test(
            Duration::from_millis(500),
            Duration::from_secs(30),
            Some(Encoding::Utf16Le),
            Instant::now(),
        )
    };
    let message = ctx.text("hi");
    let want = ctx.upper(&message);
    assert_eq!(diagnose(&ctx, &message, &want).content, Content::Correct);
    let cut = want.get(..3).unwrap_or_default();
    assert_eq!(diagnose(&ctx, &message, cut).content, Content::Cut { at: 3 });
}

#[test]
fn evidence_shows_bytes_escaped_and_bounded() {
    assert_eq!(show(b"a\0b\n\"\\", Encoding::Utf8), r#""a\0b\n\"\\""#);
    assert_eq!(show(b"abc\xff\xfe def", Encoding::Utf8), r#""abc\xff\xfe def""#);
    assert_eq!(show(&[0; 1000], Encoding::Utf8), format!("\"{}\"… (1,000 bytes)", r"\0".repeat(40)));
    assert_eq!(show("ÿ".as_bytes(), Encoding::Utf8), "\"ÿ\"");
    assert_eq!(show(b"\xff", Encoding::Legacy(encoding_rs::WINDOWS_1252)), "\"ÿ\"");
    assert_eq!(count(1, "byte"), "1 byte");
    assert_eq!(count(2048, "byte"), "2,048 bytes");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever a server sends, the evidence holds no control character and stays short.
    #[test]
    fn evidence_never_holds_raw_bytes_or_runs_long(
        message in proptest::collection::vec(any::<u8>(), 0..300),
        reply in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..3000),
    ) {
        let ctx = ctx(Transport::Udp);
        ctx.remember(&message);
        let diagnosis = diagnose(&ctx, &message, &reply);
        let evidence = diagnosis.evidence(&ctx, &message, &reply);
        prop_assert!(!evidence.chars().any(char::is_control), "{evidence}");
        prop_assert!(evidence.chars().count() < 500, "{evidence}");
    }
}
