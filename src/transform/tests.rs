//! The transform is pure, so it is tested exhaustively here: every Unicode scalar value, every
//! class of invalid UTF-8, and every way of splitting a stream into reads.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use proptest::prelude::*;

/// Every encoding the documentation lists.
pub(super) fn listed() -> Vec<Encoding> {
    LISTED.iter().map(|label| label.parse().unwrap()).collect()
}

/// What the transform must produce, written the obvious (slow) way with std's own rules.
fn reference(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in input.utf8_chunks() {
        out.extend_from_slice(chunk.valid().to_uppercase().as_bytes());
        out.extend_from_slice(chunk.invalid());
    }
    out
}

/// Feeds `input` to a streaming uppercaser cut at `cuts` (byte offsets, any order).
pub(super) fn streamed(input: &[u8], cuts: &[usize], encoding: Encoding) -> Vec<u8> {
    streamed_counting(input, cuts, encoding).0
}

/// [`streamed`], with the count of bytes passed through because they did not decode.
fn streamed_counting(input: &[u8], cuts: &[usize], encoding: Encoding) -> (Vec<u8>, u64) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut uppercaser = Uppercaser::new(encoding);
    let mut from = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        uppercaser.push(&input[from..cut], &mut out);
        from = cut;
    }
    uppercaser.finish(&mut out);
    (out, uppercaser.invalid_bytes())
}

fn up(text: &str) -> String {
    String::from_utf8(uppercase(text.as_bytes(), Encoding::Utf8)).unwrap()
}

#[test]
fn lecture_sentence() {
    assert_eq!(up("hello, world"), "HELLO, WORLD");
}

#[test]
fn full_unicode_rules() {
    assert_eq!(up("straße"), "STRASSE");
    assert_eq!(up("ﬁne"), "FINE");
    assert_eq!(up("ἀθῆναι"), "ἈΘΗ͂ΝΑΙ");
    assert_eq!(up("привет"), "ПРИВЕТ");
    assert_eq!(up("😀 ok 🎉"), "😀 OK 🎉");
    assert_eq!(up("ǆ"), "Ǆ");
    assert_eq!(up(""), "");
}

#[test]
fn greek_iota_with_dialytika_and_tonos_grows_threefold() {
    let input = "ΐ".as_bytes();
    let output = uppercase(input, Encoding::Utf8);
    assert_eq!(output, "\u{399}\u{308}\u{301}".as_bytes());
    assert_eq!(output.len(), 3 * input.len());
}

#[test]
fn every_unicode_scalar_value_matches_std() {
    let mut buf = [0u8; 4];
    for c in (0..=0x10FFFF).filter_map(char::from_u32) {
        let input = c.encode_utf8(&mut buf).as_bytes();
        let expected: String = c.to_uppercase().collect();
        assert_eq!(uppercase(input, Encoding::Utf8), expected.as_bytes(), "U+{:04X}", c as u32);
    }
}

#[test]
fn every_unicode_scalar_value_split_at_every_byte() {
    let mut buf = [0u8; 4];
    for c in (0x80..=0x10FFFF).step_by(7).filter_map(char::from_u32) {
        let input = c.encode_utf8(&mut buf).as_bytes();
        let whole = uppercase(input, Encoding::Utf8);
        for cut in 1..input.len() {
            assert_eq!(streamed(input, &[cut], Encoding::Utf8), whole, "U+{:04X}", c as u32);
        }
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(streamed(input, &every_byte, Encoding::Utf8), whole);
    }
}

#[test]
fn invalid_utf8_of_every_class_passes_through() {
    let cases: &[(&str, &[u8])] = &[
        ("truncated 2-byte", b"\xC3"),
        ("truncated 3-byte", b"\xE2\x82"),
        ("truncated 4-byte", b"\xF0\x9F\x98"),
        ("overlong slash", b"\xC0\xAF"),
        ("overlong 3-byte", b"\xE0\x80\xAF"),
        ("surrogate", b"\xED\xA0\x80"),
        ("stray continuation", b"\x80"),
        ("0xFF", b"\xFF"),
        ("0xFE", b"\xFE"),
        ("above U+10FFFF", b"\xF4\x90\x80\x80"),
        ("lead then ASCII", b"\xE2A"),
    ];
    for (name, bad) in cases {
        let mut input = b"ab".to_vec();
        input.extend_from_slice(bad);
        input.extend_from_slice("cß".as_bytes());
        let mut expected = b"AB".to_vec();
        expected.extend_from_slice(&reference(bad));
        expected.extend_from_slice("CSS".as_bytes());
        assert_eq!(uppercase(&input, Encoding::Utf8), expected, "{name}");
        for cut in 0..=input.len() {
            assert_eq!(streamed(&input, &[cut], Encoding::Utf8), expected, "{name} cut at {cut}");
        }
    }
}

#[test]
fn unfinished_character_at_end_of_stream_is_kept() {
    let mut uppercaser = Uppercaser::new(Encoding::Utf8);
    let mut out = Vec::new();
    uppercaser.push(b"ok\xE2\x82", &mut out);
    assert_eq!(out, b"OK");
    assert!(uppercaser.has_pending());
    uppercaser.finish(&mut out);
    assert_eq!(out, b"OK\xE2\x82");
    assert!(!uppercaser.has_pending());
}

#[test]
fn character_completed_one_byte_at_a_time() {
    let input = "aé€😀ß".as_bytes();
    let every_byte: Vec<usize> = (0..input.len()).collect();
    assert_eq!(streamed(input, &every_byte, Encoding::Utf8), "AÉ€😀SS".as_bytes());
}

#[test]
fn ascii_encoding_changes_only_a_to_z() {
    let input: Vec<u8> = (0..=255).collect();
    let output = uppercase(&input, Encoding::Ascii);
    for (byte, upper) in input.iter().zip(&output) {
        let expected = if byte.is_ascii_lowercase() { byte - 32 } else { *byte };
        assert_eq!(*upper, expected, "byte {byte:#04x}");
    }
    assert_eq!(uppercase("straße".as_bytes(), Encoding::Ascii), "STRAßE".as_bytes());
}

#[test]
fn encoding_labels() {
    for label in ["utf-8", "UTF8", " utf-8 "] {
        assert_eq!(label.parse(), Ok(Encoding::Utf8));
    }
    for label in ["ascii", "US-ASCII", "bytes"] {
        assert_eq!(label.parse(), Ok(Encoding::Ascii));
    }
    assert!("ebcdic".parse::<Encoding>().is_err());
    for encoding in listed() {
        assert_eq!(encoding.name().parse(), Ok(encoding));
    }
}

/// Text mixed with arbitrary bytes, so both the valid and the invalid paths get exercised.
fn mixed_input() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        any::<String>().prop_map(String::into_bytes),
        "[a-zß-ÿα-ωа-я ]{0,20}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn whole_message_matches_reference(input in mixed_input()) {
        prop_assert_eq!(uppercase(&input, Encoding::Utf8), reference(&input));
    }

    #[test]
    fn any_split_gives_the_whole_message_output(
        input in mixed_input(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        for encoding in listed() {
            prop_assert_eq!(streamed(&input, &cuts, encoding), uppercase(&input, encoding));
        }
    }

    #[test]
    fn invalid_bytes_are_preserved(input in mixed_input()) {
        let invalid = |bytes: &[u8]| -> Vec<u8> {
            bytes.utf8_chunks().flat_map(|c| c.invalid().to_vec()).collect()
        };
        prop_assert_eq!(invalid(&uppercase(&input, Encoding::Utf8)), invalid(&input));
    }

    #[test]
    fn invalid_bytes_are_counted_as_std_splits_them(
        input in mixed_input(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let expected: usize = input.utf8_chunks().map(|c| c.invalid().len()).sum();
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        prop_assert_eq!(streamed_counting(&input, &cuts, Encoding::Utf8).1, expected as u64);
    }

    #[test]
    fn ascii_mode_preserves_length_and_non_letters(input in any::<Vec<u8>>()) {
        let output = uppercase(&input, Encoding::Ascii);
        prop_assert_eq!(output.len(), input.len());
        for (a, b) in input.iter().zip(&output) {
            prop_assert_eq!(a.to_ascii_uppercase(), *b);
        }
    }
}

/// Bytes biased towards what breaks UTF-8 decoders: lead bytes, continuation bytes, the
/// boundaries of the valid ranges, and ASCII letters.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        0x00u8..=0x7F,
        0x80u8..=0xBF,
        0xC0u8..=0xC3,
        0xE0u8..=0xED,
        0xF0u8..=0xF5,
        Just(0xFFu8),
        b'a'..=b'z',
    ];
    proptest::collection::vec(byte, 0..64)
}

/// How many cases the fuzz-style property runs: `UPCASE_FUZZ_CASES`, 5,000 by default (CI runs
/// far more).
fn fuzz_cases() -> u32 {
    std::env::var("UPCASE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000)
}

proptest! {
    // Stands in for `cargo fuzz`, which needs a nightly toolchain: streaming in any split must
    // equal the reference on inputs built to hit every decoder edge.
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases()))]

    #[test]
    fn fuzz_streaming_matches_reference(
        input in prop_oneof![hostile_bytes(), mixed_input()],
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        prop_assert_eq!(streamed(&input, &cuts, Encoding::Utf8), reference(&input));
    }
}
