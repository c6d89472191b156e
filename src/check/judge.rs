//! What the text probes send, written in the encoding graded, and what counts as a correct reply:
//! always the transform's uppercase of the very bytes sent, in that encoding, so the check and
//! `upcase serve` can never disagree about a rule of text.
//!
//! Judging only: nothing here touches a socket. Without `--encoding` a server that uppercases
//! ASCII only gets a warn (the lecture never promised more); with it, the server promised that
//! encoding, and ASCII only is a fail.

use super::diagnosis::{self, diagnose, show, Content};
use super::{Ctx, Row, Status};
use crate::format::thousands;
use crate::transform::{decode_text, encode_text, Encoding};

/// Text that exercises full Unicode uppercasing in UTF-8: ß, ﬁ, accented Greek, Cyrillic, an
/// emoji, and ΐ, whose uppercase is three characters.
pub(super) const UNICODE: &str = "straße ﬁne άλφα ωμέγα привет 🎉 ΐ";

/// Words for the unicode probe in any other encoding, which gets the ones it can write whole:
/// windows-1252 "hello straße ÿ café ñandú åäö", KOI8-R "hello привет", Shift_JIS "hello αβγ
/// привет ｑｗｅｒｔｙ", UTF-16 every word.
const WORDS: &[&str] = &[
    "hello",
    "straße",
    "ÿ",
    "café",
    "ñandú",
    "åäö",
    "łódź",
    "άλφα",
    "αβγ",
    "привет",
    "ｑｗｅｒｔｙ",
    "ﬁne",
    "🎉",
    "ΐ",
];

/// Invalid UTF-8 with ASCII around it.
pub(super) const INVALID: &[u8] = b"abc\xff\xfe def";

/// Whether the encoding graded is UTF-8 or the byte mode, where the lecture's samples apply as
/// they are.
fn utf8_like(ctx: &Ctx) -> bool {
    matches!(ctx.encoding(), Encoding::Utf8 | Encoding::Ascii)
}

/// An ASCII lowercase message of exactly `len` bytes, written in the encoding graded (cut to
/// `len` bytes: in UTF-16 that may end halfway through a code unit, which must pass unchanged).
pub(super) fn sized_message(ctx: &Ctx, len: usize) -> Vec<u8> {
    let text: String = "the quick brown fox jumps over the lazy dog ".chars().cycle().take(len).collect();
    let mut message = ctx.text(&text);
    message.truncate(len);
    message
}

/// Judges a reply to a message of `len` bytes that should come back whole and uppercased.
pub(super) fn judge_size(ctx: &Ctx, len: usize, message: &[u8], reply: &[u8]) -> Row {
    let name = format!("size {}", thousands(len));
    diagnosis::judge(&name, ctx, message, reply, &format!("{} bytes came back whole", thousands(len)))
}

/// The unicode probe's text and its bytes in the encoding graded.
pub(super) fn unicode_sample(ctx: &Ctx) -> (String, Vec<u8>) {
    if utf8_like(ctx) {
        return (UNICODE.to_owned(), ctx.text(UNICODE));
    }
    let encoding = ctx.encoding();
    let words: Vec<&str> = WORDS.iter().copied().filter(|word| encode_text(word, encoding).is_ok()).collect();
    let text = words.join(" ");
    let bytes = ctx.text(&text);
    (text, bytes)
}

/// Judges the reply to the unicode sample `text`, sent as `message`.
pub(super) fn judge_unicode(ctx: &Ctx, text: &str, message: &[u8], reply: &[u8]) -> Row {
    let name = "unicode";
    let encoding = ctx.encoding();
    let diagnosis = diagnose(ctx, message, reply);
    if diagnosis.is_correct() {
        let evidence = if encoding == Encoding::Utf8 {
            "ß, ﬁ, Greek, Cyrillic, emoji and ΐ uppercased in full".to_owned()
        } else {
            format!("{text:?} written in {encoding} came back as {encoding} uppercases it")
        };
        return Row::new(name, Status::Pass, evidence, "");
    }
    match (diagnosis.content, diagnosis.extra, ctx.given) {
        (Content::AsciiOnly, None, None) => Row::new(
            name,
            Status::Warn,
            "uppercases ASCII only: ß, Greek and Cyrillic came back unchanged",
            diagnosis::ASCII_ONLY,
        ),
        (Content::AsciiOnly, None, Some(_)) => Row::new(
            name,
            Status::Fail,
            format!(
                "{text:?} written in {encoding} came back with only a-z uppercased, as {:?}: the server does \
                 not read {encoding}",
                decode_text(reply, encoding)
            ),
            &format!("Read the bytes as {encoding}, the encoding its clients write, then uppercase."),
        ),
        (Content::Other, _, given) => {
            let advice = if given.is_some() {
                format!("Uppercase with full Unicode rules, reading and writing {encoding}.")
            } else {
                "Uppercase with full Unicode rules; ß becomes SS and ΐ three characters.".to_owned()
            };
            Row::new(name, Status::Fail, diagnosis.evidence(ctx, message, reply), &advice)
        }
        _ => diagnosis::wrong(name, ctx, message, reply, &diagnosis),
    }
}

/// A message with a multibyte letter to cut in two: its bytes, where to cut (inside the letter),
/// and the letter. `None` when the encoding has no such letter (single-byte encodings).
pub(super) fn split_sample(ctx: &Ctx) -> Option<(Vec<u8>, usize, char)> {
    let letter = ['ß', 'ｑ', 'д', 'λ'].into_iter().find(|letter| {
        let bytes = encode_text(&letter.to_string(), ctx.encoding()).unwrap_or_default();
        bytes.len() >= 2 && ctx.upper(&bytes) != bytes
    })?;
    let message = ctx.text(&format!("stra{letter}e"));
    Some((message, ctx.text("stra").len() + 1, letter))
}

/// Judges the reply to a split `letter` in `message`.
pub(super) fn judge_split(ctx: &Ctx, message: &[u8], letter: char, reply: &[u8], ending: &str) -> Row {
    let name = "split character";
    let encoding = ctx.encoding();
    let diagnosis = diagnose(ctx, message, reply);
    if diagnosis.is_correct() {
        let upper = decode_text(&ctx.upper(&ctx.text(&letter.to_string())), encoding);
        return Row::new(
            name,
            Status::Pass,
            format!("{letter} cut across two segments 50 ms apart came back as {upper}"),
            "",
        );
    }
    match (diagnosis.content, diagnosis.extra) {
        (Content::AsciiOnly, None) => {
            let evidence = format!(
                "{letter} cut across two segments came back whole, but uppercases ASCII only ({})",
                decode_text(reply, encoding)
            );
            match ctx.given {
                None => Row::new(name, Status::Warn, evidence, diagnosis::ASCII_ONLY),
                Some(_) => Row::new(
                    name,
                    Status::Fail,
                    evidence,
                    &format!("Read the bytes as {encoding}, the encoding its clients write, then uppercase."),
                ),
            }
        }
        (Content::Empty | Content::Other, _) => Row::new(
            name,
            Status::Fail,
            format!("{letter} cut across two segments: got {}, {ending}", diagnosis::show(reply, encoding)),
            "Read until the message is complete, and keep an unfinished character for the next read.",
        ),
        _ => {
            let mut row = diagnosis::wrong(name, ctx, message, reply, &diagnosis);
            row.evidence = format!("{letter} cut across two segments: {}", row.evidence);
            row
        }
    }
}

/// Judges the reply to [`INVALID`]; silence is a warn here, turned to a fail when the server
/// died of it. In an encoding other than UTF-8 those bytes may be text, and must be uppercased
/// as such.
pub(super) fn judge_invalid(ctx: &Ctx, reply: &[u8]) -> Row {
    let name = "invalid utf-8";
    let encoding = ctx.encoding();
    let diagnosis = diagnose(ctx, INVALID, reply);
    if diagnosis.is_correct() {
        let evidence = if utf8_like(ctx) {
            "answered, invalid bytes passed through unchanged".to_owned()
        } else {
            format!("answered, the bytes uppercased as {encoding} reads them")
        };
        return Row::new(name, Status::Pass, evidence, "");
    }
    if reply.is_empty() {
        return Row::new(
            name,
            Status::Warn,
            "no reply to a message with invalid UTF-8: dropped, but the server still answers",
            "Answer anyway: uppercase what decodes and pass the other bytes through (Python: \
             errors='surrogateescape'; Java and C: copy the bytes that do not decode as they are).",
        );
    }
    if diagnosis.every_reply() {
        return diagnosis::wrong(name, ctx, INVALID, reply, &diagnosis);
    }
    // U+FFFD as UTF-8 writes it: what a decoder that replaces errors sends back.
    if encoding == Encoding::Utf8 && reply.windows(3).any(|w| w == "\u{FFFD}".as_bytes()) {
        return Row::new(
            name,
            Status::Warn,
            "answered, but replaced the invalid bytes with U+FFFD",
            "Pass bytes that do not decode through unchanged (Python: errors='surrogateescape', not 'replace').",
        );
    }
    Row::new(
        name,
        Status::Fail,
        // As bytes: in the encoding graded they may not be text at all.
        format!(
            "wrong reply: {}, not {}",
            show(reply, Encoding::Ascii),
            show(&ctx.upper(INVALID), Encoding::Ascii)
        ),
        "Uppercase what decodes and pass the other bytes through.",
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::transform::uppercase;

    fn ctx(encoding: Option<&str>) -> Ctx {
        let encoding = encoding.map(|label| label.parse().unwrap_or_default());
        Ctx::for_test(Duration::from_secs(1), Duration::from_secs(30), encoding, Instant::now())
    }

    #[test]
    fn a_cut_reply_names_the_cut() {
        let ctx = ctx(None);
        let message = sized_message(&ctx, 1025);
        let want = ctx.upper(&message);
        let row = judge_size(&ctx, 1025, &message, want.get(..1024).unwrap_or_default());
        assert_eq!(row.status, Status::Fail);
        assert!(row.evidence.starts_with("cut at 1,024 bytes"), "{}", row.evidence);
    }

    #[test]
    fn sized_messages_have_the_size_in_every_encoding() {
        for label in ["utf-8", "latin1", "utf-16le", "shift_jis"] {
            assert_eq!(sized_message(&ctx(Some(label)), 1025).len(), 1025, "{label}");
        }
    }

    #[test]
    fn ascii_only_is_a_warn_unless_an_encoding_was_promised() {
        let plain = ctx(None);
        let (text, message) = unicode_sample(&plain);
        let ascii = uppercase(&message, Encoding::Ascii);
        assert_eq!(judge_unicode(&plain, &text, &message, &ascii).status, Status::Warn);
        assert_eq!(judge_unicode(&plain, &text, &message, &plain.upper(&message)).status, Status::Pass);
        let latin1 = ctx(Some("latin1"));
        let (text, message) = unicode_sample(&latin1);
        assert_eq!(text, "hello straße ÿ café ñandú åäö");
        let row = judge_unicode(&latin1, &text, &message, &uppercase(&message, Encoding::Ascii));
        assert_eq!(row.status, Status::Fail);
        assert!(row.evidence.contains("does not read windows-1252"), "{}", row.evidence);
        assert_eq!(judge_unicode(&latin1, &text, &message, &latin1.upper(&message)).status, Status::Pass);
    }

    #[test]
    fn every_encoding_gets_a_unicode_sample_with_letters_to_uppercase() {
        for label in ["koi8-r", "shift_jis", "euc-kr", "gbk", "big5", "iso-8859-2", "utf-16be"] {
            let ctx = ctx(Some(label));
            let (text, message) = unicode_sample(&ctx);
            assert_ne!(ctx.upper(&message), uppercase(&message, Encoding::Ascii), "{label}: {text}");
        }
    }

    #[test]
    fn the_split_letter_is_multibyte_in_the_encoding() {
        let (message, at, letter) = split_sample(&ctx(None)).unwrap_or_default();
        assert_eq!((message.as_slice(), at, letter), ("straße".as_bytes(), 5, 'ß'));
        let (_, at, letter) = split_sample(&ctx(Some("shift_jis"))).unwrap_or_default();
        assert_eq!((at, letter), (5, 'ｑ'));
        let (_, at, letter) = split_sample(&ctx(Some("utf-16le"))).unwrap_or_default();
        assert_eq!((at, letter), (9, 'ß'));
        assert!(split_sample(&ctx(Some("latin1"))).is_none(), "one byte per character");
        assert!(split_sample(&ctx(Some("ascii"))).is_none(), "the byte mode does not decode");
    }

    #[test]
    fn invalid_utf8_is_text_in_latin1() {
        let latin1 = ctx(Some("latin1"));
        assert_eq!(latin1.upper(INVALID), b"ABC\x9f\xde DEF");
        let row = judge_invalid(&latin1, INVALID.to_ascii_uppercase().as_slice());
        assert_eq!(row.status, Status::Fail);
        assert!(row.evidence.contains(r"\xff"), "{}", row.evidence);
    }
}
