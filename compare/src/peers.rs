//! The servers compared: how each is started on a free port of 127.0.0.1, how it is known to be
//! ready, and how it is stopped.
//!
//! Each peer runs in its own process group, owned by a [`Running`] that stops the whole group
//! when dropped (socat's forked children and all) and, while it runs, is registered to be stopped
//! on Ctrl-C as well. Never measures anything: that is [`crate::measuring`].

use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::cleanup::OnInterrupt;
use crate::tools::{self, Tool};

/// How long a server may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(2);

/// A server in the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// `upcase serve --model async`.
    Async,
    /// `upcase serve --model async --workers 1`: one event loop, for what a second one costs.
    AsyncOneWorker,
    /// `upcase serve --model threaded`.
    Threaded,
    /// `upcase serve --model iterative`.
    Iterative,
    /// The async model reading latin1.
    AsyncLatin1,
    /// The async model reading shift_jis.
    AsyncShiftJis,
    /// `compare/peers/tuned_upper.c`: thread per core, recvmmsg, edge-triggered epoll. The C
    /// reference of the targets.
    CTuned,
    /// `compare/peers/epoll_upper.c`: one thread, level-triggered epoll, a datagram per call.
    CEpoll,
    /// The lecture's UDP server.
    PythonUdp,
    /// The lecture's threaded TCP server.
    PythonTcp,
    /// socat forking `tr a-z A-Z` per connection.
    Socat,
    /// iperf3's server: moves bytes one way without looking at them.
    Iperf3,
}

/// How a peer says it is ready.
enum Ready {
    /// It prints a line holding this text.
    Says(&'static str),
    /// Its TCP port accepts a connection.
    Accepts,
}

impl Peer {
    /// Every peer, in the order the tables list them.
    pub const ALL: [Self; 12] = [
        Self::Async,
        Self::AsyncOneWorker,
        Self::Threaded,
        Self::Iterative,
        Self::AsyncLatin1,
        Self::AsyncShiftJis,
        Self::CTuned,
        Self::CEpoll,
        Self::PythonUdp,
        Self::PythonTcp,
        Self::Socat,
        Self::Iperf3,
    ];

    /// Its id, as `--peers` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Async => "async",
            Self::AsyncOneWorker => "async-1",
            Self::Threaded => "threaded",
            Self::Iterative => "iterative",
            Self::AsyncLatin1 => "async-latin1",
            Self::AsyncShiftJis => "async-shift_jis",
            Self::CTuned => "c",
            Self::CEpoll => "c-epoll",
            Self::PythonUdp => "py-udp",
            Self::PythonTcp => "py-tcp",
            Self::Socat => "socat",
            Self::Iperf3 => "iperf3",
        }
    }

    /// The peer with this id.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|peer| peer.name() == name)
    }

    /// How the tables name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Async => "upcase async",
            Self::AsyncOneWorker => "upcase async, --workers 1",
            Self::Threaded => "upcase threaded",
            Self::Iterative => "upcase iterative",
            Self::AsyncLatin1 => "upcase async, --encoding latin1",
            Self::AsyncShiftJis => "upcase async, --encoding shift_jis",
            Self::CTuned => "C, thread per core (gcc -O2)",
            Self::CEpoll => "C epoll, one thread (gcc -O2)",
            Self::PythonUdp => "Python UDP (lecture)",
            Self::PythonTcp => "Python threaded TCP (lecture)",
            Self::Socat => "socat + tr",
            Self::Iperf3 => "iperf3 (ceiling)",
        }
    }

    /// Whether it is upcase itself (and so needs the release build).
    pub fn is_upcase(self) -> bool {
        matches!(
            self,
            Self::Async
                | Self::AsyncOneWorker
                | Self::Threaded
                | Self::Iterative
                | Self::AsyncLatin1
                | Self::AsyncShiftJis
        )
    }

    /// Whether its work is done in forked children, whose CPU time counts only once reaped.
    pub fn forks(self) -> bool {
        self == Self::Socat
    }

    /// The tools it needs on PATH.
    pub fn tools(self) -> &'static [Tool] {
        match self {
            Self::CTuned | Self::CEpoll => &[tools::GCC],
            Self::PythonUdp | Self::PythonTcp => &[tools::PYTHON3],
            Self::Socat => &[tools::SOCAT, tools::STDBUF],
            Self::Iperf3 => &[tools::IPERF3],
            _ => &[],
        }
    }

    fn ready(self) -> Ready {
        match self {
            Self::CTuned | Self::CEpoll => Ready::Says("ready "),
            Self::PythonUdp | Self::PythonTcp => Ready::Says("ready to receive"),
            Self::Socat => Ready::Accepts,
            Self::Iperf3 => Ready::Says("Server listening"),
            _ => Ready::Says("listening on udp"),
        }
    }
}

/// The programs peers are started from, found or built before the first starts.
#[derive(Debug, Clone, Default)]
pub struct Programs {
    /// The repository (for the Python peers' scripts, and to shorten paths in the report).
    pub root: PathBuf,
    /// upcase's release binary.
    pub upcase: Option<PathBuf>,
    /// `tuned_upper`, built.
    pub tuned_c: Option<PathBuf>,
    /// `epoll_upper`, built.
    pub epoll_c: Option<PathBuf>,
    /// The Python interpreter.
    pub python: Option<PathBuf>,
}

impl Programs {
    /// The command line that starts `peer` on `port`.
    pub fn argv(&self, peer: Peer, port: u16) -> anyhow::Result<Vec<OsString>> {
        let need = |path: &Option<PathBuf>, what: &str| {
            path.clone().map(OsString::from).with_context(|| format!("{what} was not built or found"))
        };
        let listen = format!("127.0.0.1:{port}");
        let serve = |extra: &[&str]| -> anyhow::Result<Vec<OsString>> {
            let mut argv = vec![need(&self.upcase, "upcase")?];
            argv.extend(
                ["serve", "--listen", &listen].into_iter().chain(extra.iter().copied()).map(OsString::from),
            );
            Ok(argv)
        };
        let script = |name: &str| -> anyhow::Result<Vec<OsString>> {
            let path = self.root.join("tests/peers").join(name);
            Ok(vec![need(&self.python, "python3")?, path.into(), port.to_string().into()])
        };
        Ok(match peer {
            Peer::Async => serve(&["--model", "async"])?,
            Peer::AsyncOneWorker => serve(&["--model", "async", "--workers", "1"])?,
            Peer::Threaded => serve(&["--model", "threaded"])?,
            Peer::Iterative => serve(&["--model", "iterative"])?,
            Peer::AsyncLatin1 => serve(&["--model", "async", "--encoding", "latin1"])?,
            Peer::AsyncShiftJis => serve(&["--model", "async", "--encoding", "shift_jis"])?,
            Peer::CTuned => vec![need(&self.tuned_c, "tuned_upper")?, port.to_string().into()],
            Peer::CEpoll => vec![need(&self.epoll_c, "epoll_upper")?, port.to_string().into()],
            Peer::PythonUdp => script("udp_server.py")?,
            Peer::PythonTcp => script("tcp_server_threaded.py")?,
            Peer::Socat => vec![
                "socat".into(),
                format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork").into(),
                "EXEC:stdbuf -o0 tr a-z A-Z".into(),
            ],
            Peer::Iperf3 => ["iperf3", "-s", "-B", "127.0.0.1", "-p", &port.to_string(), "--forceflush"]
                .into_iter()
                .map(OsString::from)
                .collect(),
        })
    }

    /// `argv` as one line for the report, with the repository's path left out.
    pub fn shown(&self, argv: &[OsString]) -> String {
        let root = format!("{}/", self.root.display());
        let words: Vec<String> = argv
            .iter()
            .map(|word| {
                let word = word.to_string_lossy().replace(&root, "");
                if word.contains(' ') {
                    format!("'{word}'")
                } else {
                    word
                }
            })
            .collect();
        words.join(" ")
    }
}

/// A port of 127.0.0.1 free for both TCP and UDP (every peer serves both on one port).
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").context("cannot bind a TCP socket on 127.0.0.1")?;
        let port = tcp.local_addr().context("cannot read a bound socket's address")?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("found no port of 127.0.0.1 free for both TCP and UDP in 100 tries")
}

/// A started peer. Dropping it stops its process group.
#[derive(Debug)]
pub struct Running {
    /// Which peer.
    pub peer: Peer,
    /// Its TCP and UDP port on 127.0.0.1.
    pub port: u16,
    /// How it was started, for the report.
    pub command: String,
    /// Where its output goes.
    pub log: PathBuf,
    child: Child,
    _on_interrupt: OnInterrupt,
}

impl Running {
    /// Starts `peer` on a free port, its output to `log`, and waits until it is ready.
    pub fn start(peer: Peer, programs: &Programs, log: &Path) -> anyhow::Result<Self> {
        Self::start_under(peer, programs, log, &[], &[])
    }

    /// Starts `peer` as the last arguments of `wrapper` (`perf stat ... --`), with `env` added,
    /// and waits until it is ready.
    pub fn start_under(
        peer: Peer,
        programs: &Programs,
        log: &Path,
        wrapper: &[OsString],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let argv = programs.argv(peer, port)?;
        let command = programs.shown(&argv);
        let full: Vec<&OsString> = wrapper.iter().chain(&argv).collect();
        let Some((program, args)) = full.split_first() else { bail!("no command for {}", peer.name()) };
        let output = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let errors = output.try_clone().with_context(|| format!("cannot reopen {}", log.display()))?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}: {command}", peer.name()))?;
        let group = child.id();
        let _on_interrupt = OnInterrupt::register(move || {
            let _ = signal_group(group, Signal::SIGTERM);
            thread::sleep(Duration::from_millis(300));
            let _ = signal_group(group, Signal::SIGKILL);
        });
        let mut running = Self { peer, port, command, log: log.to_path_buf(), child, _on_interrupt };
        running.wait_ready(peer.ready())?;
        Ok(running)
    }

    /// Its process id (under a wrapper: the wrapper's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its address, TCP and UDP alike.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Why it is no longer running, if it is not.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("it exited ({status}): {}", self.last_words())),
            Err(e) => Some(format!("cannot wait for it: {e}")),
        }
    }

    /// Asks the processes its main process started to stop (the server, when the main process
    /// is `perf stat`), then waits for the main process to exit by itself.
    pub fn stop_children_then_wait(&mut self, limit: Duration) -> anyhow::Result<()> {
        let pid = self.pid();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
            let _ = signal::kill(Pid::from_raw(child), Signal::SIGTERM);
        }
        let deadline = Instant::now() + limit;
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                bail!("{} did not stop within {limit:?} of SIGTERM", self.peer.name());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn wait_ready(&mut self, ready: Ready) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(why) = self.exited() {
                bail!("{} did not start: {why}", self.peer.name());
            }
            let is_ready = match ready {
                Ready::Says(text) => std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(text)),
                Ready::Accepts => {
                    TcpStream::connect_timeout(&self.addr(), Duration::from_millis(500)).is_ok()
                }
            };
            if is_ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} was not ready after {READY_WITHIN:?} (see {})",
                    self.peer.name(),
                    self.log.display()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn last_words(&self) -> String {
        tools::last_line(&std::fs::read(&self.log).unwrap_or_default())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let group = self.child.id();
        let _ = signal_group(group, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_WITHIN;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (a forked child that ignored SIGTERM) goes too.
        let _ = signal_group(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Sends `signal` to every process of the group led by `leader`.
fn signal_group(leader: u32, signal: Signal) -> nix::Result<()> {
    let group = i32::try_from(leader).map_err(|_| nix::errno::Errno::ESRCH)?;
    signal::killpg(Pid::from_raw(group), signal)
}
