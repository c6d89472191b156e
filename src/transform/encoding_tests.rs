//! The transform in every listed encoding: labels, round trips, the lossless rule (unwritable
//! uppercase kept, undecodable bytes kept), and splits of multibyte characters across reads.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::tests::{listed, streamed};
use super::*;

fn encoding(label: &str) -> Encoding {
    label.parse().unwrap()
}

/// `text` written in `encoding` (which must be able to write all of it).
fn encode(text: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 | Encoding::Ascii => text.as_bytes().to_vec(),
        Encoding::Utf16Le => utf16::encode(text, false),
        Encoding::Utf16Be => utf16::encode(text, true),
        Encoding::Legacy(legacy) => {
            let (bytes, _, unmappable) = legacy.encode(text);
            assert!(!unmappable, "{text:?} is not writable in {}", legacy.name());
            bytes.into_owned()
        }
    }
}

#[test]
fn labels_follow_the_whatwg_standard() {
    assert_eq!(encoding("latin1"), Encoding::Legacy(encoding_rs::WINDOWS_1252));
    assert_eq!(encoding("ISO-8859-1"), Encoding::Legacy(encoding_rs::WINDOWS_1252));
    assert_eq!(encoding("sjis"), Encoding::Legacy(encoding_rs::SHIFT_JIS));
    assert_eq!(encoding("utf-16"), Encoding::Utf16Le);
    assert_eq!(encoding("UTF-16BE"), Encoding::Utf16Be);
    assert_eq!(encoding("unicode-1-1-utf-8"), Encoding::Utf8);
    assert_eq!(encoding("ascii"), Encoding::Ascii, "the byte mode, not WHATWG's windows-1252");
    for unsupported in ["iso-2022-jp", "iso-2022-kr", "ebcdic", ""] {
        assert!(unsupported.parse::<Encoding>().is_err(), "{unsupported}");
    }
    assert_eq!(listed().len(), LISTED.len());
}

/// A lowercase sample in each encoding's repertoire, and its uppercase there.
const SAMPLES: &[(&str, &str, &str)] = &[
    ("utf-8", "straße ﬁne ἀθῆναι 😀", "STRASSE FINE ἈΘΗ͂ΝΑΙ 😀"),
    ("windows-1252", "straße, café, ÿ", "STRASSE, CAFÉ, Ÿ"),
    ("iso-8859-2", "zażółć gęślą jaźń", "ZAŻÓŁĆ GĘŚLĄ JAŹŃ"),
    ("iso-8859-5", "привет, мир", "ПРИВЕТ, МИР"),
    ("koi8-r", "привет, мир", "ПРИВЕТ, МИР"),
    ("shift_jis", "こんにちは abc ｆｕｌｌ", "こんにちは ABC ＦＵＬＬ"),
    ("euc-kr", "안녕 abc αβγ", "안녕 ABC ΑΒΓ"),
    ("gbk", "你好 abc αβ", "你好 ABC ΑΒ"),
    ("big5", "你好 abc", "你好 ABC"),
    ("utf-16le", "straße 😀 ﬁ", "STRASSE 😀 FI"),
    ("utf-16be", "straße 😀 ﬁ", "STRASSE 😀 FI"),
];

#[test]
fn round_trip_in_every_encoding_and_every_split() {
    for (label, lower, upper) in SAMPLES {
        let encoding = encoding(label);
        let input = encode(lower, encoding);
        let expected = encode(upper, encoding);
        assert_eq!(uppercase(&input, encoding), expected, "{label}");
        for cut in 0..=input.len() {
            assert_eq!(streamed(&input, &[cut], encoding), expected, "{label} cut at {cut}");
        }
        let every_byte: Vec<usize> = (0..input.len()).collect();
        assert_eq!(streamed(&input, &every_byte, encoding), expected, "{label} a byte at a time");
    }
}

/// µ uppercases to Greek Μ, which windows-1252 cannot write: it stays µ, byte for byte.
#[test]
fn unwritable_uppercase_is_left_as_it_was() {
    let windows_1252 = encoding("windows-1252");
    assert_eq!(uppercase(b"\xB5m and \xFF", windows_1252), b"\xB5M AND \x9F"); // µm and ÿ → µM AND Ÿ
                                                                               // ß has no single uppercase in KOI8-R, but "SS" is writable.
    assert_eq!(uppercase("ß".as_bytes(), Encoding::Utf8), b"SS");
    let iso_8859_5 = encoding("iso-8859-5");
    assert_eq!(uppercase(b"\xA7", iso_8859_5), b"\xA7", "§ has no uppercase");
}

#[test]
fn undecodable_bytes_pass_through_unchanged() {
    let cases: &[(&str, &[u8], &[u8])] = &[
        ("shift_jis", b"a\xA0b\xFDc", b"A\xA0B\xFDC"),
        ("shift_jis", b"a\x81", b"A\x81"), // a lead byte at the end of the stream
        ("euc-kr", b"x\xFFy", b"X\xFFY"),
        ("gbk", b"q\xFFr", b"Q\xFFR"),
        ("windows-1253", b"a\xAAb", b"A\xAAB"), // a hole in the table
        ("utf-16le", b"\x00\xD8a\x00", b"\x00\xD8A\x00"), // a lone high surrogate
        ("utf-16be", b"\xDC\x00\x00b", b"\xDC\x00\x00B"), // a lone low surrogate
        ("utf-16le", b"a\x00b", b"A\x00b"),     // an odd byte at the end
    ];
    for (label, input, expected) in cases {
        let encoding = encoding(label);
        assert_eq!(uppercase(input, encoding), *expected, "{label} {input:?}");
        for cut in 0..=input.len() {
            assert_eq!(streamed(input, &[cut], encoding), *expected, "{label} {input:?} cut at {cut}");
        }
    }
}

/// Every byte of every listed single-byte encoding: uppercase when it decodes and its uppercase
/// is writable, the byte itself otherwise.
#[test]
fn every_byte_of_single_byte_encodings() {
    for label in ["windows-1252", "iso-8859-2", "iso-8859-5", "koi8-r", "windows-1253"] {
        let Encoding::Legacy(legacy) = encoding(label) else { unreachable!() };
        for byte in 0..=255u8 {
            let input = [byte];
            let output = uppercase(&input, Encoding::Legacy(legacy));
            let (decoded, had_errors) = legacy.decode_without_bom_handling(&input);
            if had_errors {
                assert_eq!(output, [byte], "{label} {byte:#04x} does not decode");
                continue;
            }
            let upper: String = decoded.chars().flat_map(char::to_uppercase).collect();
            let (encoded, _, unmappable) = legacy.encode(&upper);
            let expected = if unmappable { vec![byte] } else { encoded.into_owned() };
            assert_eq!(output, expected, "{label} {byte:#04x} ({decoded})");
        }
    }
}
