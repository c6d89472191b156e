//! Running under systemd, with systemd's own tools (Debian's `systemd` package): sockets handed
//! over by `systemd-socket-activate` are served, told apart by their type with or without
//! names; wrong ones get errors that say what to fix in the socket unit; `READY=1`, `STOPPING=1`
//! and watchdog pings reach a notification socket the test binds; and the unit files in
//! `deploy/systemd/` pass `systemd-analyze verify` without a warning.
//!
//! Without the tools these tests skip with a note, unless `UPCASE_REQUIRE_TOOLS=1` (CI), where a
//! missing tool fails them.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{PATIENCE, SENTENCE, SHOUTED};

const UPCASE: &str = env!("CARGO_BIN_EXE_upcase");

/// Whether `tool` is on PATH; without it the test skips with a note, or fails under CI.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("UPCASE_REQUIRE_TOOLS").is_none(),
            "{tool} is required (UPCASE_REQUIRE_TOOLS is set): install Debian's systemd package"
        );
        eprintln!("skipped: {tool} not found (install Debian's systemd package)");
    }
    found
}

/// A child process killed and reaped when dropped; its stdout and stderr collected as it runs.
struct Running {
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child =
            command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let collect = |mut pipe: Box<dyn Read + Send>| {
            let into = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&into);
            std::thread::spawn(move || {
                let mut chunk = [0; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    sink.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
            into
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Self { child: Some(child), stdout, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until stderr contains `text`.
    fn stderr_shows(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.stderr().contains(text) {
            assert!(Instant::now() < deadline, "stderr never showed {text:?}:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) for the exit; returns its code, stdout and stderr.
    fn wait(mut self) -> (Option<i32>, String, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("did not exit within {PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The readers see the pipes close at the exit; give them a moment to take the rest.
        std::thread::sleep(Duration::from_millis(50));
        let text = |bytes: &Mutex<Vec<u8>>| String::from_utf8_lossy(&bytes.lock().unwrap()).into_owned();
        (status.code(), text(&self.stdout), text(&self.stderr))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A notification socket standing in for systemd's.
struct Notifications {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Notifications {
    fn bind() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("upcase-notify-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        Self { socket, path }
    }

    /// The next notification that contains `wanted` (bounded); earlier ones are returned too.
    fn until(&self, wanted: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let mut buffer = [0; 4096];
        loop {
            let n =
                self.socket.recv(&mut buffer).unwrap_or_else(|e| panic!("no {wanted} ({e}); got {seen:?}"));
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            let done = message.lines().any(|line| line == wanted);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A loopback port free for TCP now (and, almost surely, for UDP).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `systemd-socket-activate` for TCP, then again for UDP (it passes on the sockets it was given),
/// then `program`: the two sockets on one port, as a socket unit with ListenStream= and
/// ListenDatagram= would pass them.
fn activate(port: u16, fdnames: Option<&str>, notify: &Notifications, program: &[&str]) -> Command {
    let listen = format!("127.0.0.1:{port}");
    let mut command = Command::new("systemd-socket-activate");
    command.args([
        "-l",
        &listen,
        "-E",
        "NOTIFY_SOCKET",
        "systemd-socket-activate",
        "--datagram",
        "-l",
        &listen,
    ]);
    if let Some(names) = fdnames {
        command.arg(format!("--fdname={names}"));
    }
    command.args(["-E", "NOTIFY_SOCKET"]).args(program).env("NOTIFY_SOCKET", &notify.path);
    command
}

/// Connects, retrying while the activator is still starting to listen (bounded).
fn connect_when_listening(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect_timeout(&addr, PATIENCE) {
            Ok(stream) => {
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                return stream;
            }
            Err(e) => assert!(Instant::now() < deadline, "nothing listens on {addr}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Must hold: the TCP and UDP sockets systemd passes (named `tcp` and `udp`, or not named at all)
/// are served, on the port systemd bound; `READY=1` comes with a status naming both, after which
/// SIGTERM sends `STOPPING=1` and the server exits 0.
#[test]
fn socket_activated_sockets_are_served_and_systemd_is_told() {
    if !have("systemd-socket-activate") {
        return;
    }
    for names in [Some("tcp:udp"), None] {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let notify = Notifications::bind();
        let server = Running::start(activate(port, names, &notify, &[UPCASE, "serve"]));
        // The activator starts the program at the first connection, which the program serves.
        let mut stream = connect_when_listening(addr);
        stream.write_all(SENTENCE.as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, SHOUTED, "{names:?}");
        let ready = notify.until("READY=1");
        let status = ready.last().unwrap();
        assert!(status.contains(&format!("STATUS=serving tcp {addr}, udp {addr}")), "{names:?}: {status:?}");

        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        socket.send_to(b"datagram", addr).unwrap();
        let mut datagram = [0; 64];
        let (n, from) = socket.recv_from(&mut datagram).unwrap();
        assert_eq!((&datagram[..n], from), (&b"DATAGRAM"[..], addr), "{names:?}");

        let kill = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
        assert!(kill.success());
        notify.until("STOPPING=1");
        let (code, stdout, stderr) = server.wait();
        assert_eq!(code, Some(0), "{names:?}: {stderr}");
        assert_eq!(stdout, format!("listening on tcp {addr}\nlistening on udp {addr}\n"), "{names:?}");
    }
}

/// Must hold: a datagram socket systemd binds to every address, `ListenDatagram=PORT` (`[::]`,
/// dual-stack) or `ListenDatagram=0.0.0.0:PORT`, answers an IPv4 client from the address it
/// wrote to: sent to 127.0.0.2 (or .3), the reply comes from there, where the kernel's own pick
/// would be 127.0.0.1. So are the datagrams that started the service, queued before upcase asked
/// for destinations: the kernel gives theirs too, and none is counted as unknown.
#[test]
fn a_socket_on_every_address_answers_from_the_address_written_to() {
    if !have("systemd-socket-activate") {
        return;
    }
    for every_address in ["[::]", "0.0.0.0"] {
        let port = free_port();
        let listen = if every_address == "[::]" { port.to_string() } else { format!("0.0.0.0:{port}") };
        let notify = Notifications::bind();
        let mut command = Command::new("systemd-socket-activate");
        command
            .args(["--datagram", "-l", &listen, "-E", "NOTIFY_SOCKET", UPCASE, "serve"])
            .env("NOTIFY_SOCKET", &notify.path);
        let server = Running::start(command);
        let [two, three] = [2, 3].map(|last| SocketAddr::from(([127, 0, 0, last], port)));
        // The activator starts the program at the first datagram, and loses those sent before it
        // listens: send until one is answered (bounded).
        let starter = UdpSocket::bind("127.0.0.1:0").unwrap();
        starter.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let deadline = Instant::now() + PATIENCE;
        let mut datagram = [0; 64];
        loop {
            starter.send_to(b"start", two).unwrap();
            if let Ok((n, from)) = starter.recv_from(&mut datagram) {
                assert_eq!((&datagram[..n], from), (&b"START"[..], two), "{listen}: queued before");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{listen}: no reply from the activated server: {}",
                server.stderr()
            );
        }
        notify.until("READY=1");

        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        for to in [two, three] {
            socket.send_to(b"from where", to).unwrap();
            let (n, from) = socket.recv_from(&mut datagram).unwrap();
            assert_eq!((&datagram[..n], from), (&b"FROM WHERE"[..], to), "{listen}");
        }

        let kill = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
        assert!(kill.success());
        let (code, stdout, stderr) = server.wait();
        assert_eq!(code, Some(0), "{listen}: {stderr}");
        assert_eq!(stdout, format!("listening on udp {every_address}:{port}\n"));
        assert!(!stderr.contains("udp_destination_unknown"), "{listen}: {stderr}");
    }
}

/// Must hold: sockets upcase cannot serve as systemd passed them get an exit status of 1 and a
/// message saying what to change: names that contradict the types, a connected socket from
/// `Accept=yes`, a Unix socket, and `LISTEN_FDS=0`.
#[test]
fn wrong_sockets_get_errors_that_say_what_to_fix() {
    if !have("systemd-socket-activate") {
        return;
    }
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let notify = Notifications::bind();
    let swapped = Running::start(activate(port, Some("udp:tcp"), &notify, &[UPCASE, "serve"]));
    let _trigger = connect_when_listening(addr);
    let (code, _, stderr) = swapped.wait();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is named \"udp\" in LISTEN_FDNAMES but is a tcp socket"), "{stderr}");

    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut accepting = Command::new("systemd-socket-activate");
    accepting.args(["--accept", "-l", &addr.to_string(), UPCASE, "serve"]);
    let accepting = Running::start(accepting);
    let _trigger = connect_when_listening(addr);
    // The activator serves on; its child, given the connection, fails.
    accepting.stderr_shows("is a connected TCP socket, not a listening one: remove Accept=yes");

    let path = std::env::temp_dir().join(format!("upcase-unix-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut unix = Command::new("systemd-socket-activate");
    unix.args(["-l", path.to_str().unwrap(), UPCASE, "serve"]);
    let unix = Running::start(unix);
    let deadline = Instant::now() + PATIENCE;
    let _trigger = loop {
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(stream) => break stream,
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (code, _, stderr) = unix.wait();
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("upcase serves TCP (ListenStream=) and UDP (ListenDatagram=) on IP addresses only"),
        "{stderr}"
    );

    let mut none = Command::new("sh");
    none.args(["-c", &format!("LISTEN_PID=$$ LISTEN_FDS=0 exec {UPCASE} serve")]);
    let (code, _, stderr) = Running::start(none).wait();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("systemd passed no sockets (LISTEN_FDS=0)"), "{stderr}");
}

/// Must hold: with `WATCHDOG_USEC` and `WATCHDOG_PID` naming the process, `WATCHDOG=1` pings keep
/// coming after `READY=1` (counted, not timed), and SIGTERM still sends `STOPPING=1`.
#[test]
fn the_watchdog_is_pinged() {
    if !have("sh") {
        return;
    }
    let notify = Notifications::bind();
    let mut command = Command::new("sh");
    command
        .args(["-c", &format!("WATCHDOG_PID=$$ exec {UPCASE} serve --listen 127.0.0.1:0")])
        .env("WATCHDOG_USEC", "200000")
        .env("NOTIFY_SOCKET", &notify.path);
    let server = Running::start(command);
    notify.until("READY=1");
    for _ in 0..3 {
        notify.until("WATCHDOG=1");
    }
    let kill = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(kill.success());
    notify.until("STOPPING=1");
    let (code, _, stderr) = server.wait();
    assert_eq!(code, Some(0), "{stderr}");
}

/// Must hold: the socket and service units in `deploy/systemd/` pass `systemd-analyze verify`
/// with no warning at all (an unknown or misspelt key is only a warning there), with the
/// service's `ExecStart=` pointed at the binary under test, which verify requires to exist.
#[test]
fn unit_files_pass_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        return;
    }
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/systemd");
    let dir = std::env::temp_dir().join(format!("upcase-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let service = std::fs::read_to_string(source.join("upcase.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/local/bin/upcase "), "the unit runs the installed binary");
    std::fs::write(dir.join("upcase.service"), service.replace("/usr/local/bin/upcase", UPCASE)).unwrap();
    std::fs::copy(source.join("upcase.socket"), dir.join("upcase.socket")).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "upcase.socket", "upcase.service"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

/// Must hold: `LISTEN_*` variables that name another process (inherited from a parent that was
/// socket-activated and forked) are ignored, however malformed: upcase binds its own sockets.
#[test]
fn variables_meant_for_another_process_are_ignored() {
    let mut command = support::upcase();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--tcp"])
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "tcp:udp:one-too-many");
    let (_server, addr) = support::start_server("upcase serve (LISTEN_PID of another)", command, |line| {
        line.strip_prefix("listening on tcp ")?.trim().parse::<SocketAddr>().ok()
    });
    let (reply, error) = support::tcp_reply_and_error(addr, SENTENCE.as_bytes());
    assert!(error.is_none());
    assert_eq!(reply, SHOUTED.as_bytes());
}
