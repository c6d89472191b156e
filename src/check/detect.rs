//! The `encoding` row: which encoding the server appears to assume, told from how it answers the
//! same kind of words written in several encodings. A server that reads encoding E uppercases
//! the words written in E, and only those; one that reads bytes uppercases a-z only.
//!
//! It sends nothing but the four samples, and only when no `--encoding` was given (with one, the
//! other rows already judge the server in that encoding). The expected replies come from the
//! transform, so the guess is exactly as good as the server's agreement with upcase's rules.

use super::{Ctx, Row, Status};
use crate::transform::{encode_text, uppercase, Encoding};

/// The encodings told apart, each with words that only a server reading it uppercases as it
/// does: Latin letters beyond ASCII, Cyrillic in KOI8-R, full-width Latin and Greek in Shift_JIS.
fn candidates() -> [(Encoding, &'static str); 4] {
    [
        (Encoding::Utf8, "straße ÿ café привет"),
        (Encoding::Legacy(encoding_rs::WINDOWS_1252), "straße ÿ café"),
        (Encoding::Legacy(encoding_rs::KOI8_R), "привет мир"),
        (Encoding::Legacy(encoding_rs::SHIFT_JIS), "ｑｗｅｒｔｙ αβγ привет"),
    ]
}

/// One sample: the encoding it is written in, its bytes, and what came back.
#[derive(Debug)]
struct Sample {
    encoding: Encoding,
    message: Vec<u8>,
    reply: Option<Vec<u8>>,
}

impl Sample {
    /// Whether the reply is the sample's uppercase in its own encoding, and that differs from
    /// what a server uppercasing a-z alone would send (so it tells something).
    fn uppercased_as_written(&self) -> bool {
        let want = uppercase(&self.message, self.encoding);
        want != uppercase(&self.message, Encoding::Ascii) && self.reply.as_deref() == Some(want.as_slice())
    }

    /// Whether only a-z changed.
    fn ascii_only(&self) -> bool {
        self.reply.as_deref() == Some(uppercase(&self.message, Encoding::Ascii).as_slice())
    }

    /// In a word, what came back.
    fn outcome(&self) -> &'static str {
        if self.reply.is_none() {
            "no reply"
        } else if self.uppercased_as_written() {
            "uppercased"
        } else if self.ascii_only() {
            "a-z only"
        } else {
            "something else"
        }
    }
}

/// The `encoding` row. `ask` sends a sample and returns the reply; it is given every reply a
/// server reading one of the candidates (or bytes) would send, so it can stop reading at one.
pub(super) fn encoding_row(ctx: &Ctx, ask: impl Fn(&[u8], &[Vec<u8>]) -> Option<Vec<u8>>) -> Row {
    if let Some(given) = ctx.given {
        let evidence = format!("not detected: every probe wrote {given}, as --encoding asks");
        return Row::new(NAME, Status::Info, evidence, "");
    }
    let servers: Vec<Encoding> =
        candidates().iter().map(|(encoding, _)| *encoding).chain([Encoding::Ascii]).collect();
    let samples: Vec<Sample> = candidates()
        .iter()
        .filter_map(|(encoding, text)| {
            let message = encode_text(text, *encoding).ok()?;
            let possible: Vec<Vec<u8>> = servers.iter().map(|server| uppercase(&message, *server)).collect();
            let reply = ask(&message, &possible);
            Some(Sample { encoding: *encoding, message, reply })
        })
        .collect();
    judge(&samples)
}

const NAME: &str = "encoding";

/// The guess, from what came back.
fn judge(samples: &[Sample]) -> Row {
    let names = listing(samples.iter().map(|sample| sample.encoding.name()).collect());
    let matched: Vec<&'static str> = samples
        .iter()
        .filter(|sample| sample.uppercased_as_written())
        .map(|sample| sample.encoding.name())
        .collect();
    match matched.as_slice() {
        ["utf-8"] => Row::new(
            NAME,
            Status::Info,
            format!("server appears to assume utf-8 (full Unicode): of samples in {names}, only utf-8 was uppercased"),
            "",
        ),
        [one] => Row::new(
            NAME,
            Status::Warn,
            format!("server appears to assume {one}: of samples in {names}, only {one} was uppercased"),
            &format!(
                "Clients write UTF-8 unless agreed otherwise: read UTF-8, or grade this server in its own \
                 encoding with --encoding {one}."
            ),
        ),
        [] if samples.iter().all(Sample::ascii_only) => Row::new(
            NAME,
            Status::Warn,
            format!(
                "server appears to assume ASCII only (bytes above 0x7F unchanged): of samples in {names}, \
                 only a-z were uppercased"
            ),
            "Decode the bytes (UTF-8), uppercase the text, encode it again.",
        ),
        [] => {
            let each: Vec<String> =
                samples.iter().map(|sample| format!("{}: {}", sample.encoding, sample.outcome())).collect();
            Row::new(
                NAME,
                Status::Info,
                format!("could not tell: no encoding's uppercase matched ({})", each.join(", ")),
                "",
            )
        }
        several => Row::new(
            NAME,
            Status::Info,
            format!(
                "could not tell: words in {} all came back uppercased (the server may guess each \
                 message's encoding)",
                listing(several.to_vec())
            ),
            "",
        ),
    }
}

/// "a, b and c".
fn listing(mut names: Vec<&str>) -> String {
    match names.pop() {
        None => String::new(),
        Some(last) if names.is_empty() => last.to_owned(),
        Some(last) => format!("{} and {last}", names.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples as a server assuming `server` would answer them.
    fn answered_by(server: Option<Encoding>) -> Vec<Sample> {
        candidates()
            .iter()
            .map(|(encoding, text)| {
                let message = encode_text(text, *encoding).unwrap_or_default();
                let reply = server.map(|server| uppercase(&message, server));
                Sample { encoding: *encoding, message, reply }
            })
            .collect()
    }

    #[test]
    fn every_sample_is_written_whole_in_its_encoding() {
        for (encoding, text) in candidates() {
            assert!(encode_text(text, encoding).is_ok(), "{encoding} cannot write {text}");
        }
    }

    #[test]
    fn each_candidate_is_told_apart() {
        for (encoding, _) in candidates() {
            let row = judge(&answered_by(Some(encoding)));
            let expected = format!("server appears to assume {encoding}");
            assert!(row.evidence.starts_with(&expected), "{encoding}: {}", row.evidence);
            let status = if encoding == Encoding::Utf8 { Status::Info } else { Status::Warn };
            assert_eq!(row.status, status, "{encoding}");
        }
    }

    #[test]
    fn the_byte_mode_is_ascii_only() {
        let row = judge(&answered_by(Some(Encoding::Ascii)));
        assert!(row.evidence.starts_with("server appears to assume ASCII only"), "{}", row.evidence);
        assert_eq!(row.status, Status::Warn);
    }

    #[test]
    fn an_encoding_not_among_the_candidates_or_silence_cannot_be_told() {
        let cyrillic = Encoding::Legacy(encoding_rs::ISO_8859_5);
        let row = judge(&answered_by(Some(cyrillic)));
        assert!(row.evidence.starts_with("could not tell"), "{}", row.evidence);
        let row = judge(&answered_by(None));
        assert!(row.evidence.contains("utf-8: no reply"), "{}", row.evidence);
        assert_eq!(row.status, Status::Info);
    }

    #[test]
    fn names_are_listed_in_english() {
        assert_eq!(listing(vec!["a"]), "a");
        assert_eq!(listing(vec!["a", "b", "c"]), "a, b and c");
    }
}
