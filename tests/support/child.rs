//! Programs run as child processes: `upcase serve` and `upcase send` (the binary under test), the
//! lecture's Python peers (`tests/peers/`) and any other program a test starts. Each child is
//! owned by a [`Guard`] that kills and reaps it when the test ends, however it ends, and shows
//! its stderr if the test failed. Every wait here is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use upcase::server::Model;

use super::net::PATIENCE;

/// A child process that is killed and reaped when dropped, so no test leaves one behind.
pub(crate) struct Guard {
    name: String,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Says when the whole of stderr has been collected (the pipe's end was read).
    stderr_done: Option<mpsc::Receiver<()>>,
}

impl Guard {
    /// Starts `command` as it is set up (its stdio included); a piped stderr is collected.
    pub(crate) fn spawn(name: &str, command: &mut Command) -> Self {
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = child.stderr.take().map(|pipe| collect_stderr(pipe, Arc::clone(&stderr)));
        Self { name: name.to_owned(), child, stderr, stderr_done }
    }

    /// The child's stdin, if it was piped and not taken yet.
    pub(crate) fn take_stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin piped and not taken yet")
    }

    /// The child's stdout, if it was piped and not taken yet.
    pub(crate) fn take_stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout piped and not taken yet")
    }

    /// What the child wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The child's process id, to measure it or send it a signal.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the child SIGTERM (what `kill` and service managers send to stop a server).
    pub(crate) fn sigterm(&self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -TERM {pid} ({}) failed", self.name);
    }

    /// Waits (bounded) for the child to exit by itself, and then for the last of its stderr (its
    /// final lines may still be in the pipe when it exits: a loaded machine shows it).
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(done) = self.stderr_done.take() {
                    // Bounded: a grandchild that kept the pipe open would hold its end for ever.
                    let _ = done.recv_timeout(deadline.saturating_duration_since(Instant::now()));
                }
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

/// Collects `pipe` into `into` on a thread of its own; the receiver hears when the pipe ended.
fn collect_stderr(mut pipe: ChildStderr, into: Arc<Mutex<Vec<u8>>>) -> mpsc::Receiver<()> {
    let (done, ended) = mpsc::channel();
    thread::spawn(move || {
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
        let _ = done.send(());
    });
    ended
}

/// Starts a server and waits (bounded) until `ready` recognises what it printed on stdout;
/// `ready` sees each line in turn and returns `Some` once it has what it needs (a port).
pub(crate) fn start_server<T>(
    name: &str,
    mut command: Command,
    mut ready: impl FnMut(&str) -> Option<T>,
) -> (Guard, T) {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut guard = Guard::spawn(name, &mut command);
    let stdout = guard.take_stdout();
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
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut guard = Guard::spawn(name, &mut command);
    let (mut input, mut stdout) = (guard.take_stdin(), guard.take_stdout());
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

/// Starts `upcase serve --model MODEL --listen 127.0.0.1:0` with `extra` flags.
pub(crate) fn serve_upcase_model(model: Model, extra: &[&str]) -> UpcaseServer {
    serve_upcase(&[&["--model", model.name()], extra].concat())
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

/// Where a test cannot run here (a tool missing, no root): says so and lets it pass, unless
/// `UPCASE_REQUIRE_TOOLS` is set (CI sets it), which makes it fail instead.
pub(crate) fn skip_unless_required(why: &str) {
    assert!(
        std::env::var_os("UPCASE_REQUIRE_TOOLS").is_none(),
        "required here (UPCASE_REQUIRE_TOOLS): {why}"
    );
    eprintln!("{why}; skipping (set UPCASE_REQUIRE_TOOLS to require it)");
}

/// Whether `tool` is on PATH; if not, the test skips through [`skip_unless_required`].
pub(crate) fn installed(tool: &str) -> bool {
    let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap();
    if !found.status.success() {
        skip_unless_required(&format!("{tool} is not installed (install it to include this test)"));
    }
    found.status.success()
}
