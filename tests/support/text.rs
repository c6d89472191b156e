//! What the tests send and what must come back: sample sentences, the lecture's prompt, long
//! messages of an exact length, and an endless stream of text with a checker for its reply.
//! Nothing here touches a socket except [`send_units`], which only writes.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};

/// The sentence most tests send, and what must come back: ß and ﬁ become two letters each.
pub(crate) const SENTENCE: &str = "straße ﬁne привет";
pub(crate) const SHOUTED: &str = "STRASSE FINE ПРИВЕТ";

/// Sample sentences with their expected replies, covering the Unicode cases the protocol names.
pub(crate) const SENTENCES: &[(&str, &str)] = &[
    ("hello, world", "HELLO, WORLD"),
    ("straße", "STRASSE"),
    ("ﬁne ﬂour", "FINE FLOUR"),
    ("ἀθῆναι καλημέρα", "ἈΘΗ͂ΝΑΙ ΚΑΛΗΜΈΡΑ"),
    ("привет, мир", "ПРИВЕТ, МИР"),
    ("emoji 😀🎉 stay", "EMOJI 😀🎉 STAY"),
    ("", ""),
];

/// The lecture's prompt, as Python's `input()` prints it: no newline.
pub(crate) const PROMPT: &str = "Input lowercase sentence:";

/// A message of exactly `len` bytes, mostly [`SENTENCE`] (so multibyte characters get split
/// across reads somewhere), padded with `a`; and the reply it must get.
pub(crate) fn long_message(len: usize) -> (Vec<u8>, Vec<u8>) {
    let (unit, shouted) = (format!("{SENTENCE} "), format!("{SHOUTED} "));
    let times = len / unit.len();
    let pad = len - times * unit.len();
    let message = format!("{}{}", unit.repeat(times), "a".repeat(pad));
    let reply = format!("{}{}", shouted.repeat(times), "A".repeat(pad));
    assert_eq!(message.len(), len);
    (message.into_bytes(), reply.into_bytes())
}

/// A unit of text with characters of 1 to 4 bytes, some of which grow when uppercased, and its
/// uppercase; a stream of units cut anywhere checks that nothing is lost, cut or garbled.
pub(crate) const UNIT: &[u8] = "the quick brown fox, straße ﬁne ἀθῆναι 😀\n".as_bytes();
pub(crate) const UNIT_UPPER: &[u8] = "THE QUICK BROWN FOX, STRASSE FINE ἈΘΗ͂ΝΑΙ 😀\n".as_bytes();

/// Checks a reply as it arrives against the endless repetition of [`UNIT_UPPER`].
#[derive(Default)]
pub(crate) struct ReplyChecker {
    /// Bytes checked so far.
    pub(crate) received: usize,
}

impl ReplyChecker {
    pub(crate) fn check(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            let expected = UNIT_UPPER[self.received % UNIT_UPPER.len()];
            assert_eq!(byte, expected, "wrong byte at offset {} of the reply", self.received);
            self.received += 1;
        }
    }
}

/// Writes `units` repetitions of [`UNIT`] in chunks that do not line up with characters, then
/// half-closes.
pub(crate) fn send_units(mut writer: TcpStream, units: usize) -> io::Result<()> {
    const PER_CHUNK: usize = 997;
    let chunk: Vec<u8> = UNIT.iter().copied().cycle().take(UNIT.len() * PER_CHUNK).collect();
    let mut left = units;
    while left > 0 {
        let n = left.min(PER_CHUNK);
        writer.write_all(&chunk[..n * UNIT.len()])?;
        left -= n;
    }
    writer.shutdown(Shutdown::Write)
}
