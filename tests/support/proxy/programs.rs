//! HAProxy and nginx as the tests run them: a configuration written to a directory of its own,
//! the program in the foreground in a process group of its own (nginx's workers with it),
//! readiness seen in the kernel's table of listening sockets (a probe connection would reach the
//! server behind and be counted), and on drop the whole group stopped: SIGTERM, then SIGKILL if it
//! is still there after a bound. Loopback only; every wait bounded.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{installed, PATIENCE};

/// A third-party program started by a test, with its directory; stopped and removed on drop.
pub(crate) struct Program {
    name: String,
    child: Child,
    pub(crate) dir: PathBuf,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Program {
    /// What it wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) until TCP `ports` of 127.0.0.1 are listening, failing with its stderr if
    /// it exits first.
    pub(crate) fn wait_listening(&mut self, ports: &[u16]) {
        self.wait_until(ports, listening);
    }

    /// Waits (bounded) until UDP `ports` of 127.0.0.1 are bound.
    pub(crate) fn wait_bound_udp(&mut self, ports: &[u16]) {
        self.wait_until(ports, bound_udp);
    }

    fn wait_until(&mut self, ports: &[u16], ready: fn(u16) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !ports.iter().all(|&port| ready(port)) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before listening on {ports:?}:\n{}", self.name, self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "{} not listening on {ports:?}:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above; whatever of the group is left (nginx's workers) goes too.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- stderr of {} ---\n{}", self.name, self.stderr());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory for one program's files.
fn fresh_dir(name: &str) -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("upcase-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(name: &str, mut command: Command, dir: PathBuf) -> Program {
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut chunk = [0; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    Program { name: name.to_owned(), child, dir, stderr }
}

/// HAProxy in the foreground with `config` (its `global` section is written here). `None`
/// when it is not installed and the test may skip.
pub(crate) fn haproxy(config: &str) -> Option<Program> {
    if !installed("haproxy") {
        return None;
    }
    let dir = fresh_dir("haproxy");
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, format!("global\n    log stderr format short local0 info\n\n{config}")).unwrap();
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&path);
    Some(start("haproxy", command, dir))
}

/// nginx in the foreground with its stream module and `config` (of its main context: a
/// `stream` block); a master process and one worker, logging to stderr, its pid file and
/// prefix in a directory of its own. `None` when it is not installed and the test may skip.
pub(crate) fn nginx(config: &str) -> Option<Program> {
    if !installed("nginx") {
        return None;
    }
    let module = "/usr/lib/nginx/modules/ngx_stream_module.so";
    if !std::path::Path::new(module).exists() {
        crate::support::skip_unless_required(
            "nginx's stream module is not installed (Debian's libnginx-mod-stream)",
        );
        return None;
    }
    let dir = fresh_dir("nginx");
    let path = dir.join("nginx.conf");
    let config = format!(
        "load_module {module};\ndaemon off;\nmaster_process on;\nworker_processes 1;\n\
         pid {pid};\nerror_log stderr notice;\nevents {{ worker_connections 8192; }}\n\n{config}\n",
        pid = dir.join("nginx.pid").display()
    );
    std::fs::write(&path, config).unwrap();
    let mut command = Command::new("nginx");
    command.arg("-p").arg(&dir).arg("-e").arg("stderr").arg("-c").arg(&path);
    Some(start("nginx", command, dir))
}

/// Whether a TCP socket listens on `port` of 127.0.0.1 (or every address), by the kernel's table.
pub(crate) fn listening(port: u16) -> bool {
    bound("/proc/net/tcp", port, "0A")
}

/// Whether a UDP socket is bound to `port` of 127.0.0.1 (or every address).
pub(crate) fn bound_udp(port: u16) -> bool {
    bound("/proc/net/udp", port, "07")
}

/// Whether `table` (/proc/net/tcp or udp) has a socket on `port` of 127.0.0.1 or every address,
/// in `state` (0A: LISTEN; 07: a bound UDP socket).
fn bound(table: &str, port: u16, state: &str) -> bool {
    let table = std::fs::read_to_string(table).unwrap_or_default();
    let wanted = [format!("0100007F:{port:04X}"), format!("00000000:{port:04X}")];
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 3 && wanted.iter().any(|w| fields[1] == w) && fields[3] == state
    })
}
