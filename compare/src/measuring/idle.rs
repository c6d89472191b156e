//! Memory per idle TCP connection: opens N connections to a server and leaves them idle, reads
//! how much the server's resident memory grew (VmRSS: user space only; socket buffers are the
//! kernel's) per connection it holds, checks a few of them still get answers, closes them all and
//! waits until the server has let go of them.
//!
//! Reads the server only through `upcase::bench::process`; never signals it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use upcase::bench::process::{open_descriptors, resident_kib, threads, Process};

/// How long to wait for the server to release closed connections before giving up on it.
const RELEASE_PATIENCE: Duration = Duration::from_secs(30);
/// Bound on one connect, and on one exchange with an idle connection.
const PATIENCE: Duration = Duration::from_secs(5);
/// Idle connections checked for an answer at the end.
const CHECKED: usize = 10;

/// What holding idle connections cost a server.
#[derive(Debug, Clone)]
pub struct Idle {
    /// Connections asked for.
    pub conns: usize,
    /// Connections made.
    pub opened: usize,
    /// Connections that could not be made.
    pub refused: usize,
    /// Why the first of those failed.
    pub first_error: Option<String>,
    /// Connections the server kept open (it may close some at once: its own limit).
    pub held: usize,
    /// Descriptors the server gained.
    pub server_fds_added: i64,
    /// Its resident memory before the connections, KiB.
    pub rss_before_kib: u64,
    /// And with them idle, KiB.
    pub rss_after_kib: u64,
    /// Growth per held connection, bytes.
    pub bytes_per_conn: Option<f64>,
    /// Idle connections checked at the end.
    pub checked: usize,
    /// Of those, answered correctly.
    pub answered: usize,
    /// The server's threads while the connections were idle.
    pub threads_while_idle: usize,
    /// Seconds from closing them until the server had released them all (or gave up).
    pub released_s: f64,
    /// Whether it released them all within the patience.
    pub released_all: bool,
}

/// Holds `conns` idle connections to the server at `addr`, process `pid`.
pub fn measure(addr: SocketAddr, pid: u32, conns: usize) -> anyhow::Result<Idle> {
    let server = Process::Pid(pid);
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).context("cannot read the open-file limit")?;
    if soft < conns as u64 + 100 {
        bail!("open-file limit {soft} is too low for {conns} connections (raise ulimit -Hn)");
    }
    // A first exchange, so that what a server allocates once (on its first connection) is not
    // counted against the idle ones.
    let mut warm = TcpStream::connect_timeout(&addr, PATIENCE).context("cannot connect to warm up")?;
    warm.set_read_timeout(Some(PATIENCE))?;
    warm.write_all(b"warm up")?;
    warm.shutdown(Shutdown::Write)?;
    io::copy(&mut warm, &mut io::sink())?;
    drop(warm);
    let fds_before = settle_descriptors(server, Duration::from_secs(3))?;
    let threads_before = threads(server)?;
    let rss_before_kib = resident_kib(server)?;

    let (mut streams, mut refused, mut first_error) = (Vec::with_capacity(conns), 0, None);
    for i in 0..conns {
        // Connecting faster than the server accepts overflows its accept queue (the lecture's
        // Python server listens with a backlog of 128), and each dropped SYN costs a second's
        // retry: keep the queue short instead.
        if i % 16 == 0 {
            let patience = Instant::now() + PATIENCE;
            while accept_queue(addr.port()).unwrap_or(0) > 64 && Instant::now() < patience {
                thread::sleep(Duration::from_millis(1));
            }
        }
        match TcpStream::connect_timeout(&addr, PATIENCE) {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                refused += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    // Until the server has accepted them all (its descriptor count stops changing; a server
    // over its own limit closes some at once), then until it has closed those it will not keep.
    settle_descriptors(server, Duration::from_secs(30))?;
    thread::sleep(Duration::from_millis(300));
    let server_fds_added = open_descriptors(server)? as i64 - fds_before as i64;
    let rss_after_kib = resident_kib(server)?;

    let still_open: Vec<&TcpStream> = streams.iter().filter(|s| !is_closed(s)).collect();
    let step = (still_open.len() / CHECKED).max(1);
    let checked: Vec<&TcpStream> = still_open.iter().step_by(step).take(CHECKED).copied().collect();
    let answered = checked.iter().filter(|s| answers(s, b"still there?")).count();
    let threads_while_idle = threads(server)?;
    let closed_at = Instant::now();
    let held = still_open.len();
    drop(checked);
    drop(still_open);
    drop(streams);
    // Until the server has let go of them all (a thread per connection can take seconds to wind
    // down), so that whatever runs next does not measure the clean-up.
    let mut released_all = false;
    while closed_at.elapsed() < RELEASE_PATIENCE {
        released_all = open_descriptors(server)? <= fds_before && threads(server)? <= threads_before;
        if released_all {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let grown = rss_after_kib.saturating_sub(rss_before_kib) as f64 * 1024.0;
    Ok(Idle {
        conns,
        opened: conns - refused,
        refused,
        first_error,
        held,
        server_fds_added,
        rss_before_kib,
        rss_after_kib,
        bytes_per_conn: (held > 0).then(|| grown / held as f64),
        checked: CHECKED.min(held),
        answered,
        threads_while_idle,
        released_s: closed_at.elapsed().as_secs_f64(),
        released_all,
    })
}

/// The server's descriptor count once it has not changed for 0.3 s (or after `patience`).
fn settle_descriptors(server: Process, patience: Duration) -> io::Result<usize> {
    let deadline = Instant::now() + patience;
    let (mut last, mut stable_since) = (open_descriptors(server)?, Instant::now());
    while Instant::now() < deadline && stable_since.elapsed() < Duration::from_millis(300) {
        thread::sleep(Duration::from_millis(50));
        let now = open_descriptors(server)?;
        if now != last {
            (last, stable_since) = (now, Instant::now());
        }
    }
    Ok(last)
}

/// Connections waiting in the accept queue of the IPv4 listener on `port`: the rx_queue of its
/// LISTEN entry in /proc/net/tcp. Listeners come first there, so reading stops at the first
/// other entry: the kernel writes the file as it is read, and the whole of it (every connection
/// on the machine) is slow to produce.
fn accept_queue(port: u16) -> Option<u64> {
    let table = BufReader::new(File::open("/proc/net/tcp").ok()?);
    for line in table.lines().skip(1) {
        let line = line.ok()?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, state, queues) = (fields.get(1)?, fields.get(3)?, fields.get(4)?);
        if *state != "0A" {
            return None;
        }
        let (_, local_port) = local.split_once(':')?;
        if u16::from_str_radix(local_port, 16).ok()? == port {
            let (_, rx) = queues.split_once(':')?;
            return u64::from_str_radix(rx, 16).ok();
        }
    }
    None
}

/// Whether the server has closed this connection (looking without reading any data).
fn is_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match stream.peek(&mut [0; 1]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// Sends `message` and reads as many bytes back; whether they are its ASCII uppercase.
fn answers(mut stream: &TcpStream, message: &[u8]) -> bool {
    let mut exchange = || -> io::Result<Vec<u8>> {
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.write_all(message)?;
        let mut reply = vec![0; message.len()];
        stream.read_exact(&mut reply)?;
        Ok(reply)
    };
    exchange().is_ok_and(|reply| reply == message.to_ascii_uppercase())
}
