//! Shared by `tests/examples.rs` and `tests/interop.rs`: programs run as child processes (the
//! `upcase` binary, the examples, the Python peers), each owned by a guard that kills it when the
//! test ends, however it ends. Every wait here is bounded, so a broken program fails a test
//! instead of hanging it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on any single wait for a child or a socket (they take milliseconds normally).
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// The sentence every test sends, and what must come back: ß and ﬁ become two letters each.
pub(crate) const SENTENCE: &str = "straße ﬁne привет";
pub(crate) const SHOUTED: &str = "STRASSE FINE ПРИВЕТ";

/// The lecture's prompt, as Python's `input()` prints it: no newline.
pub(crate) const PROMPT: &str = "Input lowercase sentence:";

/// A child process that is killed and reaped when dropped, so no test leaves one behind.
pub(crate) struct Guard {
    name: String,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Guard {
    fn new(name: &str, mut child: Child) -> Self {
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            collect_stderr(pipe, Arc::clone(&stderr));
        }
        Self { name: name.to_owned(), child, stderr }
    }

    /// What the child wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The child's process id, to send it a signal.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for the child to exit by itself.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit within {timeout:?}", self.name);
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the child is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- stderr of {} ---\n{}", self.name, self.stderr());
        }
    }
}

fn collect_stderr(mut pipe: ChildStderr, into: Arc<Mutex<Vec<u8>>>) {
    thread::spawn(move || {
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
}

/// Starts a server and waits (bounded) until `ready` recognises what it printed on stdout;
/// `ready` sees each line in turn and returns `Some` once it has what it needs (a port).
pub(crate) fn start_server<T>(
    name: &str,
    mut command: Command,
    mut ready: impl FnMut(&str) -> Option<T>,
) -> (Guard, T) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
    let stdout = child.stdout.take().unwrap();
    let guard = Guard::new(name, child);
    let (lines, received) = mpsc::channel();
    // Reads to the end, so the server never blocks on a full pipe after its ready line.
    thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if lines.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                if let Some(found) = ready(&line) {
                    return (guard, found);
                }
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{name} did not say it was ready within {PATIENCE:?}; stdout so far: {seen:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "{name} closed stdout before it was ready; stdout: {seen:?}; stderr:\n{}",
                    guard.stderr()
                )
            }
        }
    }
}

/// What a finished program did.
pub(crate) struct Output {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Output {
    /// Stdout as text, for messages and for comparing with text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Panics, showing everything the program printed, unless it succeeded.
    pub(crate) fn assert_success(&self, what: &str) -> &Self {
        assert!(
            self.status.success(),
            "{what} failed ({}); stdout: {:?}; stderr:\n{}",
            self.status,
            self.text(),
            self.stderr
        );
        self
    }
}

/// Runs `command` to the end with `stdin` as its input, killing it if it takes longer than
/// `timeout`.
pub(crate) fn run(name: &str, mut command: Command, stdin: &[u8], timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
    let (mut input, mut stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut guard = Guard::new(name, child);
    // Feeding and draining on their own threads: the child may write before it has read it all.
    let stdin = stdin.to_vec();
    thread::spawn(move || {
        let _ = input.write_all(&stdin); // A child that stops reading early is its own business.
    });
    let (sender, output) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        let _ = sender.send(bytes);
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = guard.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            panic!("{name} did not finish within {timeout:?}; stderr:\n{}", guard.stderr());
        }
        thread::sleep(Duration::from_millis(5));
    };
    let stdout = output.recv_timeout(PATIENCE).expect("stdout of a finished child");
    // The stderr thread reads until the pipe closes, which the child's exit does at once.
    let stderr_done = Instant::now() + Duration::from_secs(1);
    while Arc::strong_count(&guard.stderr) > 1 && Instant::now() < stderr_done {
        thread::sleep(Duration::from_millis(2));
    }
    Output { status, stdout, stderr: guard.stderr() }
}

/// The `upcase` binary under test.
pub(crate) fn upcase() -> Command {
    Command::new(env!("CARGO_BIN_EXE_upcase"))
}

/// `upcase serve` on a free port of 127.0.0.1, with its addresses from its `listening on` lines.
pub(crate) struct UpcaseServer {
    pub(crate) guard: Guard,
    pub(crate) tcp: Option<SocketAddr>,
    pub(crate) udp: Option<SocketAddr>,
}

impl UpcaseServer {
    pub(crate) fn tcp(&self) -> SocketAddr {
        self.tcp.expect("this server does not serve TCP")
    }

    pub(crate) fn udp(&self) -> SocketAddr {
        self.udp.expect("this server does not serve UDP")
    }
}

/// Starts `upcase serve --listen 127.0.0.1:0` with `extra` flags (`--udp`, `--model threaded`...).
pub(crate) fn serve_upcase(extra: &[&str]) -> UpcaseServer {
    serve_upcase_on("127.0.0.1:0", extra)
}

/// Starts `upcase serve --listen LISTEN` with `extra` flags (a fixed port, to restart a server on
/// the port of one that stopped).
pub(crate) fn serve_upcase_on(listen: &str, extra: &[&str]) -> UpcaseServer {
    let only_udp = extra.contains(&"--udp") && !extra.contains(&"--tcp");
    let only_tcp = extra.contains(&"--tcp") && !extra.contains(&"--udp");
    let mut command = upcase();
    command.args(["serve", "--listen", listen]).args(extra);
    let (mut tcp, mut udp) = (None, None);
    let (guard, ()) = start_server(&format!("upcase serve {}", extra.join(" ")), command, |line| {
        let (transport, addr) = line.strip_prefix("listening on ")?.split_once(' ')?;
        let addr: SocketAddr = addr.trim().parse().ok()?;
        match transport {
            "tcp" => tcp = Some(addr),
            "udp" => udp = Some(addr),
            _ => return None,
        }
        let ready = (only_udp || tcp.is_some()) && (only_tcp || udp.is_some());
        ready.then_some(())
    });
    UpcaseServer { guard, tcp, udp }
}

/// Runs `upcase send ARGS...` with `stdin`, bounded.
pub(crate) fn upcase_send(args: &[&str], stdin: &[u8]) -> Output {
    let mut command = upcase();
    command.arg("send").args(args);
    run("upcase send", command, stdin, PATIENCE)
}

/// `python3`, checked once: the interop tests need it, and its absence must fail them loudly.
pub(crate) fn python3() -> Command {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let mut child = Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("`python3 --version` failed: {status}")),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("`python3 --version` did not finish within {PATIENCE:?}"));
                }
                Err(e) => return Err(format!("cannot wait for python3: {e}")),
            }
        }
    });
    if let Err(why) = found {
        panic!("{why}. These tests run the lecture's Python programs (tests/peers/) and need Python 3 on PATH; install it (CI does).");
    }
    let mut command = Command::new("python3");
    // Text on stdin and stdout is UTF-8 whatever the locale; no __pycache__ in the source tree.
    command.env("PYTHONIOENCODING", "utf-8").env("PYTHONUTF8", "1").env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

/// A script of `tests/peers/`.
pub(crate) fn peer(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("peers").join(script)
}

/// Starts a Python peer server on a free port and returns the port it printed.
pub(crate) fn serve_python(script: &str) -> (Guard, u16) {
    let mut command = python3();
    command.arg(peer(script)).arg("0");
    start_server(script, command, |line| {
        line.strip_prefix("The server is ready to receive on port ")?.trim().parse().ok()
    })
}

/// One TCP exchange done by hand: send `message`, shut down the sending side, read until the
/// server closes. Returns what came back and the error that ended it early, if any (a server
/// that closes without reading everything makes the connection end with a reset).
pub(crate) fn tcp_exchange(addr: SocketAddr, message: &[u8]) -> (Vec<u8>, Option<io::Error>) {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let message = message.to_vec();
    // Sending on its own thread, so a server that answers as it reads cannot deadlock with us.
    let sending = thread::spawn(move || {
        writer.write_all(&message)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut reply = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let mut error = None;
    loop {
        match (&stream).read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let sent = sending.join().unwrap();
    (reply, error.or(sent.err()))
}

/// A message of exactly `len` bytes, mostly the test sentence (so multibyte characters get split
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
