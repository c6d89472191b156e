//! What a program said as it died: the error and where it happened, picked out of the tail of its
//! stderr (a Python traceback, a Java stack trace, a C program's perror line).
//!
//! Text only, best effort: what it cannot recognise it leaves to the raw tail, which the caller
//! always has too. Never judges whether the death was a flaw.

/// The error a program's stderr ends with, and the line of its own code that raised it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastWords {
    /// The exception or error line: `UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff
    /// ...`, `java.lang.NullPointerException: Cannot invoke ...`, `bind: Address already in use`.
    pub error: Option<String>,
    /// Where: `File "server.py", line 17, in <module>`, or `at Server.main(Server.java:30)`.
    pub location: Option<String>,
}

/// Reads the last words out of the tail of a program's stderr.
pub fn last_words(stderr: &str) -> LastWords {
    java(stderr)
        .or_else(|| python(stderr))
        .unwrap_or_else(|| LastWords { error: last_line(stderr).map(str::to_owned), location: None })
}

/// Whether the program said it could not bind its port because the port is in use: what Python
/// (`[Errno 98] Address already in use`), Java (`BindException: Address already in use`) and C
/// (`perror`: `bind: Address already in use`) all print, from the C library's wording.
pub fn says_address_in_use(stderr: &str) -> bool {
    stderr.contains("Address already in use") || stderr.contains("EADDRINUSE")
}

/// A Python traceback: the last frame's `File ..., line N` and the exception line after it.
fn python(stderr: &str) -> Option<LastWords> {
    let (_, traceback) = stderr.rsplit_once("Traceback (most recent call last):")?;
    let location = traceback
        .lines()
        .rfind(|line| line.trim_start().starts_with("File \""))
        .map(|line| line.trim().to_owned());
    let error = traceback
        .lines()
        .rfind(|line| !line.is_empty() && !line.starts_with(char::is_whitespace))
        .map(str::to_owned);
    Some(LastWords { error, location })
}

/// A Java stack trace: `Exception in thread "main" X: message`, and its first frame in the
/// program's own code (not in the JDK's `java.`, `javax.`, `sun.` or `jdk.` packages).
fn java(stderr: &str) -> Option<LastWords> {
    let at = stderr.rfind("Exception in thread ")?;
    let trace = stderr.get(at..)?;
    let mut lines = trace.lines();
    let error = lines.next()?.split_once("\" ").map(|(_, error)| error.trim().to_owned());
    let frames: Vec<&str> = lines
        .map(str::trim)
        .take_while(|line| line.starts_with("at ") || line.starts_with("..."))
        .filter(|line| line.starts_with("at "))
        .collect();
    let in_jdk =
        |frame: &&str| ["at java.", "at javax.", "at sun.", "at jdk."].iter().any(|p| frame.starts_with(p));
    let location =
        frames.iter().find(|frame| !in_jdk(frame)).or(frames.first()).map(|frame| (*frame).to_owned());
    Some(LastWords { error, location })
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_traceback_names_the_exception_and_the_line() {
        let stderr = "The server is ready\nTraceback (most recent call last):\n  File \"/x/server.py\", \
            line 27, in <module>\n    sentence = data.decode('utf-8')\n               ^^^^^^^^^^^\n\
            UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 3: invalid start byte\n";
        let words = last_words(stderr);
        assert_eq!(words.location.as_deref(), Some("File \"/x/server.py\", line 27, in <module>"));
        assert_eq!(
            words.error.as_deref(),
            Some(
                "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 3: invalid start byte"
            )
        );
    }

    #[test]
    fn a_java_stack_trace_names_the_exception_and_the_programs_own_frame() {
        let stderr = "Exception in thread \"main\" java.net.BindException: Address already in use\n\
            \tat java.base/sun.nio.ch.Net.bind0(Native Method)\n\tat java.base/java.net.ServerSocket.bind(ServerSocket.java:388)\n\
            \tat Server.main(Server.java:12)\n";
        let words = last_words(stderr);
        assert_eq!(words.error.as_deref(), Some("java.net.BindException: Address already in use"));
        assert_eq!(words.location.as_deref(), Some("at Server.main(Server.java:12)"));
        assert!(says_address_in_use(stderr));
    }

    #[test]
    fn anything_else_gives_its_last_line() {
        let words = last_words("listening\nbind: Address already in use\n\n");
        assert_eq!(
            words,
            LastWords { error: Some("bind: Address already in use".to_owned()), location: None }
        );
        assert_eq!(last_words(""), LastWords::default());
        assert!(!says_address_in_use("Connection refused"));
    }
}
