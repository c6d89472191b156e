//! `upcase serve`: bind (or take the sockets systemd passed), start the server and its admin
//! endpoint, report where they listen, tell systemd it is ready, stop on a signal.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;

use super::faults::FaultArgs;
use super::{exit, parse_duration, parse_encoding, LogFormat};
use upcase::admin::{self, AdminConfig};
use upcase::server::{self, systemd, BindOptions, Config, Model, ProxyProtocol, RateLimit, Server, Sockets};
use upcase::transform::Encoding;

/// Where `serve` listens unless told otherwise.
const DEFAULT_LISTEN: &str = "localhost:12000";

/// Flags of `upcase serve`.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Address to listen on, HOST:PORT or [V6]:PORT; repeat for several. A host name binds every
    /// address it resolves to. Port 0 picks a free port (the same one for UDP and TCP). Under
    /// systemd socket activation (LISTEN_FDS) the sockets it passes are served instead
    /// [default: localhost:12000].
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,

    /// Serve the admin endpoint on this address, HOST:PORT: Prometheus metrics (/metrics), a
    /// health check for balancers (/health: 503 once draining) and a live status page (/). A
    /// separate HTTP listener, never a service port; off by default.
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,

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
    /// through), ascii (only a-z change; binary-safe), or any other WHATWG label: latin1,
    /// koi8-r, shift_jis, utf-16le, ...
    #[arg(long, default_value = "utf-8", value_parser = parse_encoding)]
    encoding: Encoding,

    /// Most TCP connections open at once; more are closed as soon as they arrive.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_connections)]
    max_connections: usize,

    /// Most TCP connections one source may have open at once (an IPv4 address, an IPv6 /64;
    /// behind --proxy-protocol, the client the proxy names), 0 for no limit; more are closed as
    /// soon as they arrive. Loopback clients are not limited unless
    /// --max-connections-per-source-loopback [default: a tenth of --max-connections].
    #[arg(long, value_name = "N")]
    max_connections_per_source: Option<usize>,

    /// Apply --max-connections-per-source to loopback clients too.
    #[arg(long)]
    max_connections_per_source_loopback: bool,

    /// Every TCP connection must come from a --trusted-proxy and start with a PROXY protocol
    /// header (version 1 or 2: HAProxy's send-proxy, nginx's proxy_protocol), whose client
    /// address is then used in logs, the status page and the per-source limit. Connections
    /// without a good header are closed and counted.
    #[arg(long, requires = "trusted_proxy")]
    proxy_protocol: bool,

    /// With --proxy-protocol: a proxy allowed to connect, as an address or a network
    /// (10.0.0.0/8, 2001:db8::/32); repeat for several.
    #[arg(long, value_name = "CIDR", requires = "proxy_protocol", value_parser = parse_network)]
    trusted_proxy: Vec<ipnet::IpNet>,

    /// With --proxy-protocol: how long a connection has to send its whole PROXY header, apart
    /// from the idle timeout.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    proxy_header_timeout: Duration,

    /// Join the other servers on the same port that also say --reuseport (SO_REUSEPORT), to run
    /// several processes on one port; without it, a port in use is an error.
    #[arg(long)]
    reuseport: bool,

    /// Threaded model: most connection threads at once (the lower of this and
    /// --max-connections applies).
    #[arg(long, value_name = "N", default_value_t = Config::default().max_threads)]
    max_threads: usize,

    /// Async model: event loops, each a thread with its own sockets and connections. Threaded
    /// model: threads reading each UDP socket [default: one per core but one, at least one (one
    /// core is left to clients and the kernel on the same machine); 1 with faults on].
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

/// A network, `10.0.0.0/8`, or one address, `192.0.2.7` (a /32 or /128).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|network| network.trunc())
        .map_err(|_| {
            format!("not an address or a network: {text:?} (write e.g. 127.0.0.1, 10.0.0.0/8 or ::1/128)")
        })
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
            max_connections_per_source: match self.max_connections_per_source {
                Some(0) => None,
                Some(limit) => Some(limit),
                None => Some((self.max_connections / 10).max(1)),
            },
            per_source_loopback: self.max_connections_per_source_loopback,
            proxy_protocol: self.proxy_protocol.then(|| ProxyProtocol {
                trusted: self.trusted_proxy.clone(),
                header_timeout: self.proxy_header_timeout,
            }),
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
            observed: self.admin.is_some(),
            faults,
            panic_on: None,
            stall_on: None,
        }
    }

    fn bind_options(&self) -> BindOptions {
        let both = self.udp == self.tcp;
        let listen =
            if self.listen.is_empty() { vec![DEFAULT_LISTEN.to_owned()] } else { self.listen.clone() };
        BindOptions {
            listen,
            tcp: both || self.tcp,
            udp: both || self.udp,
            backlog: self.backlog,
            reuse_port: self.reuseport,
        }
    }
}

pub(super) fn run(args: ServeArgs, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    // First, while this is the only thread: it takes the descriptors and clears the variables.
    let activated = systemd::activated_sockets().context("cannot serve the sockets systemd passed")?;
    raise_open_file_limit();
    let config = args.config();
    // Only signals and the shutdown sequence run here: the models have threads of their own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime that supervises the server")?;
    runtime.block_on(async {
        let sockets = match activated {
            Some(sockets) => {
                if !args.listen.is_empty() || args.tcp || args.udp || args.reuseport {
                    tracing::warn!("socket-activated: serving the sockets systemd passed; --listen, --tcp, --udp and --reuseport do not apply");
                }
                sockets
            }
            None => server::bind(&args.bind_options())?,
        };
        let admin_listener = args.admin.as_deref().map(|spec| bind_admin(spec, &sockets)).transpose()?;
        let server = Server::start(sockets, config.clone())?;
        let admin = match admin_listener {
            Some(listener) => Some(
                admin::start(listener, server.observer(), AdminConfig::default())
                    .context("cannot start the admin endpoint")?,
            ),
            None => None,
        };
        // Caught from before the announcement: a signal sent as soon as it is read stops gracefully.
        let signals = server::Signals::install();
        announce(&server, admin)?;
        warn_if_reachable(&server, &config, admin);
        let listening: Vec<String> =
            server.local_addrs().iter().map(|(transport, addr)| format!("{transport} {addr}")).collect();
        tracing::info!(
            model = %config.model,
            encoding = %config.encoding,
            listening = %listening.join(", "),
            admin = admin.map(tracing::field::display),
            "ready"
        );
        let status = format!("serving {}", listening.join(", "));
        if let Err(e) = systemd::notify_ready(&status, server.stop_token(), server.observer()) {
            tracing::warn!(error = %e, "cannot tell systemd the server is ready (NOTIFY_SOCKET)");
        }
        if let Some(faults) = &config.faults {
            tracing::warn!("faults on, on purpose, for testing a client: {}", faults.describe());
        }
        let (stop, grace) = (server.stop_token(), config.grace);
        match signals {
            Ok(signals) => {
                tokio::spawn(async move {
                    signals.stop_on_second(stop, grace).await;
                    std::process::exit(exit::INTERRUPTED.into());
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for signals; stop the server with SIGKILL"),
        }
        let summary = server.wait().await;
        match log_format {
            LogFormat::Text => tracing::info!("stopped: {summary}"),
            LogFormat::Json => summary.log_fields("stopped"),
        }
        Ok(ExitCode::from(exit::OK))
    })
}

/// Binds the admin endpoint's listener on the first address `spec` resolves to that binds;
/// refuses an address a service socket already uses (the admin port is never the service's).
fn bind_admin(spec: &str, sockets: &Sockets) -> anyhow::Result<std::net::TcpListener> {
    let service = sockets.local_addrs();
    let clash = |admin: SocketAddr| {
        service.iter().find(|(_, addr)| {
            addr.port() == admin.port()
                && (addr.ip() == admin.ip() || addr.ip().is_unspecified() || admin.ip().is_unspecified())
        })
    };
    let mut last_error = None;
    for addr in upcase::net::resolve(spec).with_context(|| format!("--admin {spec}"))? {
        if let Some((transport, used)) = clash(addr).filter(|_| addr.port() != 0) {
            bail!("--admin {spec} is a service address ({transport} {used}): give the admin endpoint a port of its own");
        }
        match server::bind::tcp_listener(addr, 128) {
            Ok(listener) => {
                let bound = listener.local_addr().context("admin endpoint")?;
                if let Some((transport, used)) = clash(bound) {
                    bail!("--admin {spec} bound {bound}, a service address ({transport} {used}): give the admin endpoint a port of its own");
                }
                return Ok(listener);
            }
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) => Err(e).context("cannot start the admin endpoint"),
        None => bail!("--admin {spec} resolved to no address"),
    }
}

/// Prints one `listening on PROTO ADDR` line per socket on stdout, once all are ready, so a
/// script can wait for them (and learn the port when it asked for port 0); the admin endpoint's
/// line, `listening on http ADDR`, comes last.
fn announce(server: &Server, admin: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for (transport, addr) in server.local_addrs() {
        writeln!(stdout, "listening on {transport} {addr}")?;
    }
    if let Some(addr) = admin {
        writeln!(stdout, "listening on http {addr}")?;
    }
    stdout.flush()?;
    Ok(())
}

/// Loopback is the default; a server others can reach gets one line saying what protects it, and
/// an admin endpoint others can reach one line saying it has no protection of its own.
fn warn_if_reachable(server: &Server, config: &Config, admin: Option<SocketAddr>) {
    if let Some(addr) = admin.filter(|addr| !addr.ip().is_loopback()) {
        tracing::warn!(
            admin = %addr,
            "admin endpoint listening beyond loopback (http {addr}): anyone who can reach it can read the \
             counters and every client's address; it has no authentication, so keep it behind a \
             firewall or on a private network"
        );
    }
    warn_if_service_reachable(server, config);
}

fn warn_if_service_reachable(server: &Server, config: &Config) {
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
         (--max-connections), {} per source (--max-connections-per-source), idle timeout {:?} \
         (--idle-timeout)",
        reachable.join(", "),
        if config.udp_allow_low_ports { "answered" } else { "ignored" },
        config.max_connections,
        config.max_connections_per_source.map_or("unlimited".to_owned(), |n| n.to_string()),
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
