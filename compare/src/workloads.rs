//! What is run against whom: each workload, the peers it loads, and for the others the reason
//! they sit it out (shown as "—" with a note, so a gap in a table is never unexplained).
//!
//! Pure description: nothing here starts or measures anything.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use upcase::bench::{Clients, Options, Pattern, Text};
use upcase::net::Transport;
use upcase::transform::Encoding;

use crate::peers::Peer;
use crate::report::markdown::thousands;

/// What a workload measures, which decides its table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Requests and replies on open connections or sockets.
    Rr,
    /// A connection per request.
    Crr,
    /// Bytes both ways at once.
    Stream,
    /// Memory per idle connection.
    Idle,
}

/// A load of `upcase bench`, as its flags would say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchLoad {
    /// UDP or TCP.
    pub transport: Transport,
    /// rr, crr or stream.
    pub pattern: Pattern,
    /// Flows at once.
    pub conns: usize,
    /// Bytes per request (stream: of the repeated text).
    pub size: usize,
    /// ASCII or mixed Unicode.
    pub text: Text,
    /// The label of the encoding the server reads.
    pub encoding: &'static str,
    /// All flows on the bench's one thread, or a thread per flow (independent clients).
    pub clients: Clients,
}

impl BenchLoad {
    /// The bench's options for a run of `duration` against `target`, measuring the CPU time of
    /// `server_pid`.
    pub fn options(
        &self,
        target: SocketAddr,
        duration: Duration,
        server_pid: Option<u32>,
    ) -> anyhow::Result<Options> {
        let encoding: Encoding =
            self.encoding.parse().with_context(|| format!("workload encoding {}", self.encoding))?;
        Ok(Options {
            target: target.to_string(),
            transport: self.transport,
            pattern: self.pattern,
            conns: self.conns,
            duration,
            size: self.size,
            text: self.text,
            encoding,
            server_pid,
            clients: self.clients,
            ..Options::default()
        })
    }

    /// The same load as `upcase bench` flags, for the report and for anyone repeating a run.
    pub fn flags(&self) -> String {
        let mut flags = Vec::new();
        if self.transport == Transport::Udp {
            flags.push("--udp".to_owned());
        }
        flags.push(format!("--pattern {} --conns {} --size {}", self.pattern.name(), self.conns, self.size));
        if self.text != Text::Ascii {
            flags.push(format!("--text {}", self.text.name()));
        }
        if self.encoding != "utf-8" {
            flags.push(format!("--encoding {}", self.encoding));
        }
        if self.clients != Clients::Multiplexed {
            flags.push(format!("--clients {}", self.clients.name()));
        }
        flags.join(" ")
    }
}

/// What a workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// One `upcase bench` run per peer and round.
    Bench(BenchLoad),
    /// This many idle TCP connections, once per peer, on a fresh server.
    Idle {
        /// Connections opened and left idle.
        conns: usize,
    },
}

/// Why a peer sits a workload out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The iterative model and many connections.
    OneAtATime,
    /// The lecture's UDP server and TCP.
    UdpOnly,
    /// The lecture's TCP server and anything but a connection per request.
    OneRequestPerConnection,
    /// A TCP-only server and UDP.
    TcpOnly,
    /// An ASCII-only server and Unicode text.
    AsciiOnly,
    /// socat and many connections.
    ForksPerConnection,
}

impl Why {
    /// The note under the table.
    pub fn text(self) -> &'static str {
        match self {
            Self::OneAtATime => "The iterative model serves one connection at a time: the other flows would wait in its backlog, measuring nothing.",
            Self::UdpOnly => "The lecture's UDP server speaks UDP only.",
            Self::OneRequestPerConnection => "The lecture's TCP server answers one request per connection (one recv of at most 1,024 bytes, then close): only crr applies.",
            Self::TcpOnly => "A TCP-only server.",
            Self::AsciiOnly => "The C servers and tr uppercase ASCII only: any other text would come back wrong.",
            Self::ForksPerConnection => "socat forks a process (and a tr) per connection, with socat's default listen backlog of 5: many connections at once measure the fork and the SYN retries.",
        }
    }
}

/// One row of the plan: a workload, who runs it, and who does not and why.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Its id, as `--only` takes it.
    pub id: &'static str,
    /// Which columns its table has.
    pub kind: Kind,
    /// Its table's title.
    pub title: String,
    /// What runs.
    pub load: Load,
    /// The peers that run it, in table order.
    pub peers: Vec<Peer>,
    /// The peers that do not, and why.
    pub sits_out: Vec<(Peer, Why)>,
}

impl Workload {
    /// The flags shown under its title.
    pub fn flags(&self) -> String {
        match self.load {
            Load::Bench(load) => load.flags(),
            Load::Idle { conns } => format!("{conns} idle connections (measuring::idle)"),
        }
    }
}

/// The workloads that give costs per request (under `perf stat`), in report order.
pub const COSTED: [&str; 5] = ["udp-rr-32", "tcp-rr-32", "tcp-crr-4", "udp-rr-8-indep", "tcp-crr-4-indep"];

/// Every workload, in run order; `idle_conns` idle connections in the memory workload.
pub fn all(idle_conns: usize) -> Vec<Workload> {
    use Peer::*;
    use Why::*;
    let bench = |transport, pattern, conns, size, text, encoding| {
        Load::Bench(BenchLoad {
            transport,
            pattern,
            conns,
            size,
            text,
            encoding,
            clients: Clients::Multiplexed,
        })
    };
    // Independent clients: a thread per flow, each request its own wake-up, as separate
    // programs load a server.
    let indep = |transport, pattern, conns| {
        Load::Bench(BenchLoad {
            transport,
            pattern,
            conns,
            size: 64,
            text: Text::Ascii,
            encoding: "utf-8",
            clients: Clients::Independent,
        })
    };
    let rr = |transport, conns| bench(transport, Pattern::Rr, conns, 64, Text::Ascii, "utf-8");
    let stream = |text, encoding| bench(Transport::Tcp, Pattern::Stream, 1, 4096, text, encoding);
    let udp_peers = || vec![Async, Threaded, Iterative, CTuned, CEpoll, PythonUdp];
    let udp_out = || vec![(PythonTcp, TcpOnly), (Socat, TcpOnly)];
    let many_out = || {
        vec![
            (Iterative, OneAtATime),
            (PythonUdp, UdpOnly),
            (PythonTcp, OneRequestPerConnection),
            (Socat, ForksPerConnection),
        ]
    };
    let w = |id, kind, title: &str, load, peers, sits_out| Workload {
        id,
        kind,
        title: title.to_owned(),
        load,
        peers,
        sits_out,
    };
    vec![
        w(
            "idle",
            Kind::Idle,
            &format!("{} idle TCP connections", thousands(idle_conns as u64)),
            Load::Idle { conns: idle_conns },
            vec![Async, Threaded, CTuned, CEpoll, PythonTcp],
            vec![(Iterative, OneAtATime), (PythonUdp, UdpOnly), (Socat, ForksPerConnection)],
        ),
        w("udp-rr-1", Kind::Rr, "UDP rr, 1 flow, 64 bytes", rr(Transport::Udp, 1), udp_peers(), udp_out()),
        w("udp-rr-8", Kind::Rr, "UDP rr, 8 flows, 64 bytes", rr(Transport::Udp, 8), udp_peers(), udp_out()),
        w(
            "udp-rr-32",
            Kind::Rr,
            "UDP rr, 32 flows, 64 bytes",
            rr(Transport::Udp, 32),
            udp_peers(),
            udp_out(),
        ),
        w(
            "tcp-rr-1",
            Kind::Rr,
            "TCP rr, 1 connection, 64 bytes",
            rr(Transport::Tcp, 1),
            vec![Async, Threaded, Iterative, CTuned, CEpoll, Socat],
            vec![(PythonUdp, UdpOnly), (PythonTcp, OneRequestPerConnection)],
        ),
        w(
            "tcp-rr-8",
            Kind::Rr,
            "TCP rr, 8 connections, 64 bytes",
            rr(Transport::Tcp, 8),
            vec![Async, Threaded, CTuned, CEpoll],
            many_out(),
        ),
        w(
            "tcp-rr-32",
            Kind::Rr,
            "TCP rr, 32 connections, 64 bytes",
            rr(Transport::Tcp, 32),
            vec![Async, Threaded, CTuned, CEpoll],
            many_out(),
        ),
        w(
            "tcp-rr-1000",
            Kind::Rr,
            "TCP rr, 1,000 connections, 64 bytes",
            rr(Transport::Tcp, 1000),
            vec![Async, Threaded, CTuned, CEpoll],
            many_out(),
        ),
        w(
            "tcp-crr-4",
            Kind::Crr,
            "TCP crr (a connection per request), 4 flows, 64 bytes",
            bench(Transport::Tcp, Pattern::Crr, 4, 64, Text::Ascii, "utf-8"),
            vec![Async, Threaded, Iterative, CTuned, CEpoll, PythonTcp, Socat],
            vec![(PythonUdp, UdpOnly)],
        ),
        w(
            "udp-rr-8-indep",
            Kind::Rr,
            "UDP rr, 8 independent clients, 64 bytes",
            indep(Transport::Udp, Pattern::Rr, 8),
            vec![Async, AsyncOneWorker, Threaded, Iterative, CTuned],
            vec![(PythonTcp, TcpOnly), (Socat, TcpOnly)],
        ),
        w(
            "udp-rr-32-indep",
            Kind::Rr,
            "UDP rr, 32 independent clients, 64 bytes",
            indep(Transport::Udp, Pattern::Rr, 32),
            vec![Async, AsyncOneWorker, Threaded, Iterative, CTuned],
            vec![(PythonTcp, TcpOnly), (Socat, TcpOnly)],
        ),
        w(
            "tcp-rr-8-indep",
            Kind::Rr,
            "TCP rr, 8 independent clients, 64 bytes",
            indep(Transport::Tcp, Pattern::Rr, 8),
            vec![Async, AsyncOneWorker, Threaded, CTuned],
            many_out(),
        ),
        w(
            "tcp-rr-64-indep",
            Kind::Rr,
            "TCP rr, 64 independent clients, 64 bytes",
            indep(Transport::Tcp, Pattern::Rr, 64),
            vec![Async, AsyncOneWorker, Threaded, CTuned],
            many_out(),
        ),
        w(
            "tcp-rr-1000-indep",
            Kind::Rr,
            "TCP rr, 1,000 independent clients, 64 bytes",
            indep(Transport::Tcp, Pattern::Rr, 1000),
            vec![Async, Threaded, CTuned],
            many_out(),
        ),
        w(
            "tcp-crr-4-indep",
            Kind::Crr,
            "TCP crr, 4 independent clients, 64 bytes",
            indep(Transport::Tcp, Pattern::Crr, 4),
            vec![Async, AsyncOneWorker, Threaded, Iterative, CTuned],
            vec![(PythonUdp, UdpOnly)],
        ),
        w(
            "stream-ascii",
            Kind::Stream,
            "TCP stream, ASCII, 1 connection",
            stream(Text::Ascii, "utf-8"),
            vec![Async, Threaded, Iterative, CTuned, CEpoll, Socat, Iperf3],
            vec![(PythonUdp, UdpOnly), (PythonTcp, OneRequestPerConnection)],
        ),
        w(
            "stream-unicode",
            Kind::Stream,
            "TCP stream, mixed Unicode, 1 connection",
            stream(Text::Unicode, "utf-8"),
            vec![Async, Threaded, Iterative],
            vec![
                (CTuned, AsciiOnly),
                (CEpoll, AsciiOnly),
                (PythonUdp, UdpOnly),
                (PythonTcp, OneRequestPerConnection),
                (Socat, AsciiOnly),
            ],
        ),
        w(
            "stream-latin1",
            Kind::Stream,
            "TCP stream, mixed Unicode in latin1, 1 connection",
            stream(Text::Unicode, "latin1"),
            vec![AsyncLatin1],
            vec![(CTuned, AsciiOnly)],
        ),
        w(
            "stream-shift_jis",
            Kind::Stream,
            "TCP stream, mixed Unicode in shift_jis, 1 connection",
            stream(Text::Unicode, "shift_jis"),
            vec![AsyncShiftJis],
            vec![(CTuned, AsciiOnly)],
        ),
    ]
}

/// The workloads of `only` (all if empty), each run only by the peers of `peers` (all if
/// empty); fails on a name that is neither.
pub fn select(all: Vec<Workload>, only: &[String], peers: &[String]) -> anyhow::Result<Vec<Workload>> {
    let ids: Vec<&str> = all.iter().map(|w| w.id).collect();
    if let Some(unknown) = only.iter().find(|name| !ids.contains(&name.as_str())) {
        bail!("--only: no workload {unknown:?}; the workloads are {}", ids.join(", "));
    }
    let mut chosen = Vec::new();
    for name in peers {
        let Some(peer) = Peer::from_name(name) else {
            let names: Vec<&str> = Peer::ALL.iter().map(|p| p.name()).collect();
            bail!("--peers: no peer {name:?}; the peers are {}", names.join(", "));
        };
        chosen.push(peer);
    }
    let selected: Vec<Workload> = all
        .into_iter()
        .filter(|w| only.is_empty() || only.iter().any(|name| name == w.id))
        .map(|mut w| {
            if !chosen.is_empty() {
                w.peers.retain(|peer| chosen.contains(peer));
                w.sits_out.retain(|(peer, _)| chosen.contains(peer));
            }
            w
        })
        .filter(|w| !w.peers.is_empty())
        .collect();
    if selected.is_empty() {
        bail!("no workload left to run: --only and --peers have nothing in common");
    }
    Ok(selected)
}
