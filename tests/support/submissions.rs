//! The class of student programs in `tests/peers/class/`, ready to run under the supervisor
//! (`upcase::check::program`): the C ones built with `gcc -Wall -Werror` and the Java ones with
//! `javac`, once per test binary, into the target directory; free loopback ports to run them on;
//! a bounded wait for a condition.
//!
//! python3 and gcc (and ICU's headers, for the correct C server) are needed: without them a test
//! says what it skipped, or fails under `UPCASE_REQUIRE_TOOLS` (CI). Java is optional everywhere:
//! without `javac` the Java programs are skipped with a note.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use upcase::check::program::{Program, Ready, Spec};
use upcase::net::Transport;

use super::PATIENCE;

/// The directory of the class.
pub fn class_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/class")
}

/// Whether `tool` can be run; if not, says what is skipped, or fails when `UPCASE_REQUIRE_TOOLS`
/// is set and the tool is not `optional`.
pub fn has(tool: &str, optional: bool) -> bool {
    static FOUND: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let mut found = FOUND.get_or_init(Mutex::default).lock().unwrap();
    let present = *found.entry(tool.to_owned()).or_insert_with(|| {
        Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().status.success()
    });
    if !present {
        assert!(
            optional || std::env::var_os("UPCASE_REQUIRE_TOOLS").is_none(),
            "{tool} is required here but not installed"
        );
        let hint = if optional {
            " (optional: a JDK is not required)"
        } else {
            " (install it, or set UPCASE_REQUIRE_TOOLS to require it)"
        };
        eprintln!("{tool} is not installed; skipping the programs that need it{hint}");
    }
    present
}

/// A program of the class, ready to run: `command(port)` is its command line.
#[derive(Debug, Clone)]
pub struct Submission {
    pub file: &'static str,
    program: String,
}

impl Submission {
    /// `file` of the class, built if it is C or Java. `None` (with a note) when the tools it needs
    /// are missing and allowed to be.
    pub fn get(file: &'static str) -> Option<Self> {
        let source = class_dir().join(file);
        assert!(source.is_file(), "no {} in the class", source.display());
        let program = match Path::new(file).extension().and_then(|e| e.to_str()) {
            Some("py") => has("python3", false).then(|| format!("python3 {}", quote(&source)))?,
            Some("c") => quote(&build_c(file)?),
            Some("java") => {
                let class = file.trim_end_matches(".java");
                format!("java -Xss512k -cp {} {class}", quote(&build_java(file)?))
            }
            _ => panic!("{file}: not a language of the class"),
        };
        Some(Self { file, program })
    }

    /// The command line that runs it on `port`.
    pub fn command(&self, port: u16) -> String {
        format!("{} {port}", self.program)
    }

    /// Starts it on a free port under the supervisor and waits until it serves `transport` there.
    pub fn serve(&self, transport: Transport) -> (Program, u16, Ready) {
        let port = free_port();
        let mut spec = Spec::new(self.command(port));
        spec.port = Some(port);
        let mut program = Program::start(spec).unwrap();
        let ready = program
            .wait_ready(PATIENCE, |p| p.serves(transport, port))
            .unwrap_or_else(|e| panic!("{}: {e}; stderr:\n{}", self.file, program.stderr().text()));
        (program, port, ready)
    }
}

/// Single-quoted for `sh`.
pub fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Where this test binary keeps what it builds.
fn build_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("class-{}", env!("CARGO_CRATE_NAME")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Builds a C program of the class once per test binary; `None` if gcc (or ICU) is missing and
/// that is allowed.
fn build_c(file: &'static str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<&'static str, Option<PathBuf>>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    built.entry(file).or_insert_with(|| compile_c(file)).clone()
}

fn compile_c(file: &str) -> Option<PathBuf> {
    if !has("gcc", false) {
        return None;
    }
    let binary = build_dir().join(file.trim_end_matches(".c"));
    // Built beside, then renamed: another test binary may be running the previous build.
    let building = binary.with_extension(format!("building-{}", std::process::id()));
    let mut gcc = Command::new("gcc");
    gcc.args(["-Wall", "-Werror", "-pthread", "-o"]).arg(&building).arg(class_dir().join(file));
    if file == "correct_server.c" {
        gcc.arg("-licuuc");
    }
    let out = gcc.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unicode/") && stderr.contains("No such file") {
        assert!(std::env::var_os("UPCASE_REQUIRE_TOOLS").is_none(), "ICU is required here: {stderr}");
        eprintln!("{file} needs ICU's headers (Debian: libicu-dev); skipping it");
        return None;
    }
    assert!(out.status.success(), "gcc -Wall -Werror {file} failed:\n{stderr}");
    std::fs::rename(&building, &binary).unwrap();
    Some(binary)
}

/// Compiles a Java program of the class once per test binary; `None` (with a note) without
/// javac, whatever `UPCASE_REQUIRE_TOOLS` says: CI need not have a JDK.
fn build_java(file: &'static str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<&'static str, Option<PathBuf>>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap();
    built
        .entry(file)
        .or_insert_with(|| {
            if !has("javac", true) || !has("java", true) {
                return None;
            }
            let dir = build_dir().join(format!("java-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let out = Command::new("javac").arg("-d").arg(&dir).arg(class_dir().join(file)).output().unwrap();
            assert!(out.status.success(), "javac {file} failed:\n{}", String::from_utf8_lossy(&out.stderr));
            Some(dir)
        })
        .clone()
}

/// A loopback port free for both TCP and UDP, found with sockets that do not set
/// `SO_REUSEADDR`, so a port some connection still holds in TIME_WAIT is never given (the class's
/// servers mostly do not set it either).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        tcp.bind(&any.into()).unwrap();
        let port = tcp.local_addr().unwrap().as_socket().unwrap().port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP in 100 tries");
}

/// 127.0.0.1:`port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Whether `pid` still runs (a zombie has ended: only its parent's wait is missing).
pub fn running(pid: u32) -> bool {
    upcase::bench::process::stat(upcase::bench::process::Process::Pid(pid)).is_ok_and(|s| s.state != 'Z')
}

/// Waits, at most [`PATIENCE`], until `done` holds; whether it did.
pub fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A one-connection TCP server on a free port, for the class's clients: `answer` gets the
/// accepted connection. Returns the port and the thread's handle (it ends when `answer` returns
/// or nothing connects within [`PATIENCE`]).
pub fn one_shot_server(
    answer: impl FnOnce(std::net::TcpStream) + Send + 'static,
) -> (u16, thread::JoinHandle<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok((stream, _)) = listener.accept() {
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                answer(stream);
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    (port, handle)
}
