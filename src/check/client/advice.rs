//! What to change, said in the client's language: the language is guessed from the command line
//! (`python3 client.py`, `java -cp . Client`), and a command it cannot place (a compiled program)
//! gets the advice for C, Python and Java together.
//!
//! Words only: nothing here runs or judges anything.

/// The language a client is written in, as far as its command line tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Language {
    Python,
    Java,
    /// A compiled program, or anything else: C is the likeliest, but all three are said.
    Unknown,
}

impl Language {
    /// The language of `command`: its interpreter, or its script's extension.
    pub(super) fn guess(command: &str) -> Self {
        let words: Vec<&str> = command.split_whitespace().collect();
        let program = |word: &&str| {
            let name = word.rsplit('/').next().unwrap_or(word).trim_matches(['\'', '"']);
            name.to_owned()
        };
        let names: Vec<String> = words.iter().map(program).collect();
        if names.iter().any(|name| name.starts_with("python") || name.ends_with(".py")) {
            Self::Python
        } else if names.iter().any(|name| name == "java" || name.ends_with(".jar") || name.ends_with(".java"))
        {
            Self::Java
        } else {
            Self::Unknown
        }
    }

    fn say(self, python: &str, java: &str, c: &str) -> String {
        match self {
            Self::Python => format!("Python: {python}."),
            Self::Java => format!("Java: {java}."),
            Self::Unknown => format!("C: {c}. Python: {python}. Java: {java}."),
        }
    }

    /// A UDP client that waits forever for a reply that was lost.
    pub(super) fn set_a_timeout_and_retry(self) -> String {
        let why = "UDP does not resend: set a timeout on the socket and send the request again when it \
                   expires, a few times, then say that the server did not answer";
        let how = self.say(
            "client_socket.settimeout(1.0), then catch socket.timeout and send again",
            "socket.setSoTimeout(1000), then catch SocketTimeoutException and send again",
            "setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, ...) or poll() before recvfrom, and send again on EAGAIN",
        );
        format!("{why}. {how}")
    }

    /// A client that gives up on a reply that is only late.
    pub(super) fn wait_longer(self) -> String {
        let how = self.say(
            "settimeout(5.0), or 1.0 with several tries",
            "setSoTimeout(5000), or 1000 with several tries",
            "SO_RCVTIMEO or poll() of 5 s, or 1 s with several tries",
        );
        format!("A reply can be late without being lost: wait a few seconds in all before giving up. {how}")
    }

    /// A TCP client that reads once.
    pub(super) fn read_until_closed(self) -> String {
        let how = self.say(
            "after sendall, client_socket.shutdown(socket.SHUT_WR), then recv in a loop until it returns b''",
            "shutdownOutput(), then read the input stream until read() returns -1 (or readAllBytes())",
            "shutdown(sock, SHUT_WR), then recv in a loop until it returns 0",
        );
        format!(
            "TCP is a stream: one read returns what has arrived so far, not the whole reply. Read until the \
                 server closes the connection. {how}"
        )
    }

    /// A UDP client whose buffer is smaller than the datagram.
    pub(super) fn receive_whole_datagrams(self) -> String {
        let how = self.say(
            "client_socket.recvfrom(65535)",
            "new DatagramPacket(new byte[65535], 65535)",
            "a 65,535-byte buffer for recvfrom",
        );
        format!(
            "A datagram longer than the buffer is cut, and the rest is lost: receive into a buffer as large \
                 as any datagram. {how}"
        )
    }

    /// A client that reads less of its input line than it was given.
    pub(super) fn read_the_whole_line(self) -> String {
        let how = self.say(
            "input() reads the whole line",
            "BufferedReader.readLine() reads the whole line",
            "getline() reads a line of any length (fgets stops at its buffer's size)",
        );
        format!("Send the whole line that was typed. {how}")
    }

    /// A client that crashes on bytes that are not UTF-8.
    pub(super) fn survive_bad_bytes(self) -> String {
        let how = self.say(
            "reply.decode('utf-8', errors='replace'), or sys.stdout.buffer.write(reply)",
            "new String(data, 0, length, StandardCharsets.UTF_8) replaces them (a CharsetDecoder set to REPORT \
             throws)",
            "print the bytes as they are (fwrite), and never index a table with a byte above 127",
        );
        format!(
            "A server can send bytes that are not UTF-8: print them replaced or escaped, never crash. {how}"
        )
    }

    /// A client that crashes, hangs or exits 0 when there is no server.
    pub(super) fn fail_clearly(self) -> String {
        let how = self.say(
            "catch OSError around connect, send and recv, then sys.exit(f'cannot reach the server: {e}')",
            "catch IOException in main, print its message on System.err and System.exit(1)",
            "check what every call returns; perror(\"connect\") and return 1",
        );
        format!(
            "With no server, say so in one line and exit with a non-zero status, so that people and scripts \
                 can tell. {how}"
        )
    }

    /// A client that prints the reply and then goes on running.
    pub(super) fn exit_when_done(self) -> String {
        "Close the socket and exit once the reply is printed (and exit at the end of its input).".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_read_off_the_command_line() {
        assert_eq!(Language::guess("python3 udp_client.py 12000"), Language::Python);
        assert_eq!(Language::guess("'/x/my client.py' 12000"), Language::Python);
        assert_eq!(Language::guess("/usr/bin/python3.11 -u c.py"), Language::Python);
        assert_eq!(Language::guess("java -cp build UdpClient 12000"), Language::Java);
        assert_eq!(Language::guess("java -jar client.jar"), Language::Java);
        assert_eq!(Language::guess("./client 12000"), Language::Unknown);
        assert!(Language::Unknown.set_a_timeout_and_retry().contains("SO_RCVTIMEO"));
        assert!(Language::Python.set_a_timeout_and_retry().contains("settimeout"));
        assert!(!Language::Python.set_a_timeout_and_retry().contains("setSoTimeout"));
        assert!(Language::Java.set_a_timeout_and_retry().contains("setSoTimeout"));
    }
}
