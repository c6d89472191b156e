//! What a bench sends, and what it must get back.
//!
//! The text is built once, before the load starts. Requests then differ only in a tag of eight
//! lowercase letters at their start that spells the flow's request number, so a late UDP reply is
//! recognised as late instead of being taken for the reply to the next request. Expected replies
//! come from [`crate::transform::uppercase`] and from nowhere else. This module must never do I/O
//! or allocate per request: the flows call it in their hot loop.

use crate::transform::{encode_text, uppercase, Encoding};

/// Letters in a request's tag: a `u32` in base 16, written with the letters `a`–`p`.
pub(crate) const TAG_LEN: usize = 8;

/// Text for the ascii payload: lowercase letters and spaces only.
const ASCII_TEXT: &str = "the quick brown fox jumps over the lazy dog ";

/// Text for the unicode payload: letters that become two (ß → SS, ﬁ → FI), Greek with accents
/// (ΐ → Ϊ́, 2 bytes to 6), Cyrillic, and an emoji that has no uppercase at all; then, for the other
/// encodings, letters they can write (ÿ → Ÿ, and µ, whose uppercase latin1 cannot write;
/// fullwidth ｆｕｌｌ; kana, hangul and hanzi, which have no case). In an encoding other than
/// UTF-8, the characters it cannot write are left out.
const UNICODE_TEXT: &str = "straße ﬁne ἀθῆναι ΐ привет 😀 ÿ µ zażółć ｆｕｌｌ こんにちは 안녕 你好 ";

/// Which text a bench sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Text {
    /// Lowercase ASCII letters and spaces: the same reply under every server encoding.
    #[default]
    Ascii,
    /// A mix of scripts, including characters whose uppercase is longer (ΐ → Ϊ́): checks a
    /// server's Unicode handling, not just its speed.
    Unicode,
}

impl Text {
    /// The name `--text` accepts.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ascii => "ascii",
            Self::Unicode => "unicode",
        }
    }

    /// The sentence a payload repeats (in UTF-8; a payload writes it in the bench's encoding).
    /// Public so that `cargo bench` measures the transform on the very text `upcase bench` sends.
    pub fn source(self) -> &'static str {
        match self {
            Self::Ascii => ASCII_TEXT,
            Self::Unicode => UNICODE_TEXT,
        }
    }
}

/// One flow's request and the reply it must get, with the tag restamped for every request.
#[derive(Debug, Clone)]
pub(crate) struct Payload {
    request: Vec<u8>,
    expected: Vec<u8>,
    tagged: bool,
}

impl Payload {
    /// A request of exactly `size` bytes written in `encoding` (UTF-16: `size` rounded down to
    /// whole code units). With `tagged`, it starts with a tag (when `size` leaves room for one and
    /// the text after it, and the encoding writes ASCII as ASCII).
    pub(crate) fn new(size: usize, text: Text, encoding: Encoding, tagged: bool) -> Self {
        let utf16 = matches!(encoding, Encoding::Utf16Le | Encoding::Utf16Be);
        let size = if utf16 { size & !1 } else { size };
        let tagged = tagged && !utf16 && size > TAG_LEN + 1;
        let mut request = Vec::with_capacity(size);
        if tagged {
            request.extend_from_slice(&[b'a'; TAG_LEN]);
            request.push(b' ');
        }
        let written: Vec<Vec<u8>> = text
            .source()
            .chars()
            .filter_map(|c| encode_text(c.encode_utf8(&mut [0; 4]), encoding).ok())
            .filter(|bytes| !bytes.is_empty())
            .collect();
        'fill: loop {
            for bytes in &written {
                if request.len() + bytes.len() > size {
                    break 'fill;
                }
                request.extend_from_slice(bytes);
            }
            if written.is_empty() {
                break;
            }
        }
        // A character that did not fit leaves a few bytes: lowercase x's fill them, written as
        // the encoding writes an x (two bytes in UTF-16, where `size` is even).
        let filler = encode_text("x", encoding).unwrap_or_else(|_| b"x".to_vec());
        while request.len() + filler.len() <= size {
            request.extend_from_slice(&filler);
        }
        let expected = uppercase(&request, encoding);
        Self { request, expected, tagged }
    }

    /// The request as it is now stamped.
    pub(crate) fn request(&self) -> &[u8] {
        &self.request
    }

    /// The reply the current request must get.
    pub(crate) fn expected(&self) -> &[u8] {
        &self.expected
    }

    /// Writes request number `sequence` into the tag of the request and of the expected reply.
    pub(crate) fn stamp(&mut self, sequence: u32) {
        if !self.tagged {
            return;
        }
        let letters = tag_letters(sequence);
        // Both start with the tag: it is ASCII, so uppercasing does not move it.
        if let Some(tag) = self.request.get_mut(..TAG_LEN) {
            tag.copy_from_slice(&letters);
        }
        if let Some(tag) = self.expected.get_mut(..TAG_LEN) {
            tag.copy_from_slice(&letters.map(|b| b.to_ascii_uppercase()));
        }
    }

    /// Whether `reply` is the expected reply but for its tag: the correct reply to another
    /// request of this flow.
    pub(crate) fn same_text(&self, reply: &[u8]) -> bool {
        reply.len() == self.expected.len() && reply.get(TAG_LEN..) == self.expected.get(TAG_LEN..)
    }

    /// The request number a reply answers, if it carries a well-formed uppercase tag.
    pub(crate) fn sequence_of(&self, reply: &[u8]) -> Option<u32> {
        if !self.tagged {
            return None;
        }
        reply.get(..TAG_LEN)?.iter().try_fold(0u32, |n, &letter| match letter {
            b'A'..=b'P' => Some(n << 4 | u32::from(letter - b'A')),
            _ => None,
        })
    }
}

/// `sequence` in base 16, most significant first, with the digits `a`–`p`.
fn tag_letters(sequence: u32) -> [u8; TAG_LEN] {
    let mut letters = [b'a'; TAG_LEN];
    for (i, letter) in letters.iter_mut().rev().enumerate() {
        // The digit is below 16, so the letter stays within a–p.
        *letter = b'a' + ((sequence >> (4 * i)) & 0xf) as u8;
    }
    letters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_exact_size_and_only_lowercase_text() {
        for size in [1, 8, 9, 10, 64, 1000, 65_507] {
            let payload = Payload::new(size, Text::Ascii, Encoding::Utf8, true);
            assert_eq!(payload.request().len(), size);
            assert!(payload.request().iter().all(|b| b.is_ascii_lowercase() || *b == b' '));
            assert_eq!(payload.expected(), payload.request().to_ascii_uppercase());
        }
    }

    #[test]
    fn unicode_is_cut_at_a_character_boundary_and_grows_when_uppercased() {
        for size in 10..200 {
            let payload = Payload::new(size, Text::Unicode, Encoding::Utf8, true);
            assert_eq!(payload.request().len(), size);
            assert!(std::str::from_utf8(payload.request()).is_ok(), "size {size}");
        }
        let payload = Payload::new(64, Text::Unicode, Encoding::Utf8, false);
        assert!(payload.expected().len() > 64);
        assert!(std::str::from_utf8(payload.expected()).is_ok_and(|s| s.starts_with("STRASSE FINE")));
    }

    #[test]
    fn stamped_tags_are_the_uppercase_of_the_whole_request_and_read_back() {
        let mut payload = Payload::new(100, Text::Unicode, Encoding::Utf8, true);
        for sequence in [0, 1, 0xabcd, u32::MAX] {
            payload.stamp(sequence);
            assert_eq!(payload.expected(), uppercase(payload.request(), Encoding::Utf8));
            assert_eq!(payload.sequence_of(payload.expected()), Some(sequence));
            assert_eq!(payload.sequence_of(payload.request()), None);
        }
    }

    #[test]
    fn small_requests_carry_no_tag() {
        let mut payload = Payload::new(9, Text::Ascii, Encoding::Utf8, true);
        payload.stamp(5);
        assert_eq!(payload.request(), b"the quick");
        assert_eq!(payload.sequence_of(b"THE QUICK"), None);
    }
}
