//! `upcase serve`: bind, start the server, report where it listens, stop on a signal.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::faults::FaultArgs;
use super::{exit, parse_duration, parse_encoding};
use upcase::server::{self, BindOptions, Config, Model, RateLimit, Server};
use upcase::transform::Encoding;

/// Flags of `upcase serve`.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address to listen on, HOST:PORT or [V6]:PORT; repeat for several. A host name binds every
    /// address it resolves to. Port 0 picks a free port (the same one for UDP and TCP).
    #[arg(long, value_name = "ADDR", default_value = "localhost:12000")]
    listen: Vec<String>,

    /// Serve UDP only (with --tcp too: both, the default).
    #[arg(long)]
    udp: bool,

    /// Serve TCP only (with --udp too: both, the default).
    #[arg(long)]
    tcp: bool,

    /// Concurrency model: iterative (one client at a time, the lecture's first servers), threaded
    /// (a thread per TCP connection; a thread pool for UDP), or async (an event loop per core).
    #[arg(long, default_value = "async", value_parser = parse_model)]
    model: Model,

    /// How to read the bytes as text: utf-8 (full Unicode uppercasing; invalid bytes pass
    /// through) or ascii (only a-z change; binary-safe).
    #[arg(long, default_value = "utf-8", value_parser = parse_encoding)]
    encoding: Encoding,

    /// Most TCP connections open at once; more are closed as soon as they arrive.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_connections)]
    max_connections: usize,

    /// Threaded model: most connection threads at once (the lower of this and
    /// --max-connections applies).
    #[arg(long, value_name = "N", default_value_t = Config::default().max_threads)]
    max_threads: usize,

    /// Async model: event loops, each a thread with its own sockets and connections. Threaded
    /// model: threads reading each UDP socket [default: number of cores; 1 with faults on].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,

    /// Close a TCP connection that sends nothing for this long (0: never).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    idle_timeout: Duration,

    /// Drop a TCP client that does not read its reply for this long.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    write_timeout: Duration,

    /// Close a TCP connection after this long in total, however active (0: never). Bounds what
    /// a slow client that is never quite idle can hold.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    max_connection_time: Duration,

    /// On Ctrl-C or SIGTERM, how long open TCP streams may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    grace: Duration,

    /// Largest UDP request answered and reply sent, in bytes; larger ones are dropped and
    /// counted, never cut.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_datagram)]
    max_datagram: usize,

    /// TCP listen backlog: connections the kernel completes before the server accepts them
    /// (capped by net.core.somaxconn).
    #[arg(long, value_name = "N", default_value_t = server::bind::DEFAULT_BACKLOG)]
    backlog: i32,

    /// Answer UDP datagrams from source ports below 1024 (ignored by default: answering echo or
    /// chargen services lets a forged datagram start an endless loop).
    #[arg(long)]
    udp_allow_low_ports: bool,

    /// UDP reply bytes per second that one source address may draw (0: unlimited). Applies to
    /// non-loopback clients, so a forged source cannot use the server as an amplifier.
    #[arg(long, value_name = "BYTES", default_value_t = RateLimit::default().bytes_per_second)]
    udp_rate: u64,

    /// UDP reply bytes one source address may draw at once, after a quiet spell.
    #[arg(long, value_name = "BYTES", default_value_t = RateLimit::default().burst)]
    udp_burst: u64,

    /// Apply --udp-rate to loopback clients too.
    #[arg(long)]
    udp_rate_loopback: bool,

    #[command(flatten)]
    faults: FaultArgs,
}

fn parse_model(name: &str) -> Result<Model, String> {
    Model::ALL
        .into_iter()
        .find(|m| m.name() == name)
        .ok_or_else(|| format!("unknown model {name:?}; choose iterative, threaded or async"))
}

impl ServeArgs {
    fn config(&self) -> Config {
        let defaults = Config::default();
        let faults = self.faults.faults();
        // Each worker draws its own fault decisions, and which worker a client lands on depends
        // on its port: one worker, unless told otherwise, so that a seed replays the same faults.
        let workers = if faults.is_some() { 1 } else { defaults.workers };
        Config {
            model: self.model,
            encoding: self.encoding,
            max_connections: self.max_connections,
            max_threads: self.max_threads,
            workers: self.workers.unwrap_or(workers),
            idle_timeout: Some(self.idle_timeout).filter(|d| !d.is_zero()),
            write_timeout: self.write_timeout,
            max_connection_time: Some(self.max_connection_time).filter(|d| !d.is_zero()),
            grace: self.grace,
            max_datagram: self.max_datagram,
            read_chunk: defaults.read_chunk,
            udp_allow_low_ports: self.udp_allow_low_ports,
            udp_rate: (self.udp_rate > 0)
                .then_some(RateLimit { bytes_per_second: self.udp_rate, burst: self.udp_burst }),
            udp_rate_loopback: self.udp_rate_loopback,
            faults,
            panic_on: None,
        }
    }

    fn bind_options(&self) -> BindOptions {
        let both = self.udp == self.tcp;
        BindOptions {
            listen: self.listen.clone(),
            tcp: both || self.tcp,
            udp: both || self.udp,
            backlog: self.backlog,
        }
    }
}

pub(super) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    raise_open_file_limit();
    let config = args.config();
    // Only signals and the shutdown sequence run here: the models have threads of their own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime that supervises the server")?;
    runtime.block_on(async {
        let sockets = server::bind(&args.bind_options())?;
        let server = Server::start(sockets, config.clone())?;
        let signals = server::Signals::install();
        announce(&server)?;
        warn_if_reachable(&server, &config);
        if let Some(faults) = &config.faults {
            tracing::warn!("faults on, on purpose, for testing a client: {}", faults.describe());
        }
        tracing::info!(model = %config.model, encoding = %config.encoding, "ready");
        match signals {
            Ok(signals) => {
                let (stop, grace) = (server.stop_token(), config.grace);
                tokio::spawn(async move {
                    signals.stop_on_second(stop, grace).await;
                    std::process::exit(exit::INTERRUPTED.into());
                });
            }
            Err(e) => tracing::warn!("cannot listen for signals ({e}); stop the server with SIGKILL"),
        }
        let summary = server.wait().await;
        tracing::info!("stopped: {summary}");
        Ok(ExitCode::from(exit::OK))
    })
}

/// Prints one `listening on PROTO ADDR` line per socket on stdout, once all are ready, so a
/// script can wait for them (and learn the port when it asked for port 0).
fn announce(server: &Server) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for (transport, addr) in server.local_addrs() {
        writeln!(stdout, "listening on {transport} {addr}")?;
    }
    stdout.flush()?;
    Ok(())
}

/// Loopback is the default; a server others can reach gets one line saying what protects it.
fn warn_if_reachable(server: &Server, config: &Config) {
    let reachable: Vec<String> = server
        .local_addrs()
        .iter()
        .filter(|(_, addr)| !addr.ip().is_loopback())
        .map(|(transport, addr)| format!("{transport} {addr}"))
        .collect();
    if reachable.is_empty() {
        return;
    }
    let udp_rate = config
        .udp_rate
        .map_or("unlimited".to_owned(), |r| format!("{} bytes/s, burst {}", r.bytes_per_second, r.burst));
    tracing::warn!(
        "listening beyond loopback ({}): anyone who can reach it can use it. Protections: UDP replies \
         per source {udp_rate} (--udp-rate), UDP from ports below 1024 {}, at most {} TCP connections \
         (--max-connections), idle timeout {:?} (--idle-timeout)",
        reachable.join(", "),
        if config.udp_allow_low_ports { "answered" } else { "ignored" },
        config.max_connections,
        config.idle_timeout,
    );
}

/// Each connection needs a file descriptor, and the usual soft limit (1,024) would cap the server
/// far below `--max-connections`; the hard limit is what the system really allows.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!("open file limit: {limit}"),
        Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
    }
}
