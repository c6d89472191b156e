//! Shared by the admin endpoint's tests: `upcase serve --admin` as a child process with its three
//! addresses, a minimal HTTP/1.1 client (one request per connection, every wait bounded), and a
//! strict reader of the Prometheus text format.
//!
//! The client is written by hand on purpose: the tests also send what no HTTP library would
//! (garbage, a megabyte of header, a request trickled a byte at a time), and one small client
//! for both keeps the tests' view of the wire exact.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{start_server, upcase, Guard, PATIENCE};

/// `upcase serve --admin` on free ports of 127.0.0.1.
pub(crate) struct AdminServer {
    pub(crate) guard: Guard,
    pub(crate) tcp: SocketAddr,
    pub(crate) udp: SocketAddr,
    pub(crate) admin: SocketAddr,
}

/// Starts `upcase [global] serve --listen 127.0.0.1:0 --admin 127.0.0.1:0 EXTRA...` and waits
/// for its three `listening on` lines.
pub(crate) fn serve_with_admin(global: &[&str], extra: &[&str]) -> AdminServer {
    let mut command = upcase();
    command.args(global).args(["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]).args(extra);
    start_admin_server(command)
}

/// Starts `command` (an `upcase serve` with `--admin`) and waits for its three addresses.
pub(crate) fn start_admin_server(command: Command) -> AdminServer {
    let (mut tcp, mut udp, mut admin) = (None, None, None);
    let (guard, ()) = start_server("upcase serve --admin", command, |line| {
        let (kind, addr) = line.strip_prefix("listening on ")?.split_once(' ')?;
        let addr: SocketAddr = addr.trim().parse().ok()?;
        match kind {
            "tcp" => tcp = Some(addr),
            "udp" => udp = Some(addr),
            "http" => admin = Some(addr),
            _ => {}
        }
        (tcp.is_some() && udp.is_some() && admin.is_some()).then_some(())
    });
    AdminServer { guard, tcp: tcp.unwrap(), udp: udp.unwrap(), admin: admin.unwrap() }
}

/// One HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HashMap<String, String>,
    pub(crate) body: String,
}

/// `GET path` on a fresh connection (`Connection: close`), read to the end.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let raw = exchange(addr, request.as_bytes()).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    parse_response(&raw).unwrap_or_else(|| panic!("GET {path}: not an HTTP response: {raw:?}"))
}

/// Sends `bytes` and reads until the server closes (bounded by [`PATIENCE`]).
pub(crate) fn exchange(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    stream.write_all(bytes)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

/// Splits a whole HTTP/1.1 response (the server closed after it) into status, headers and body.
pub(crate) fn parse_response(raw: &str) -> Option<Response> {
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(Response { status, headers, body: body.to_owned() })
}

/// Polls `GET path` until `check` holds for the response (bounded); returns that response.
pub(crate) fn get_until(
    addr: SocketAddr,
    path: &str,
    what: &str,
    check: impl Fn(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let response = get(addr, path);
        if check(&response) {
            return response;
        }
        assert!(Instant::now() < deadline, "GET {path} never showed {what}; last: {response:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// One sample of a scrape: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

/// A parsed scrape: each family's type and its samples.
#[derive(Debug, Default)]
pub(crate) struct Scrape {
    pub(crate) types: HashMap<String, String>,
    pub(crate) samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the sample `name` whose labels include `labels`; panics unless exactly one.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v)))
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    /// The counter or gauge `name`, which must be a whole number.
    pub(crate) fn integer(&self, name: &str) -> u64 {
        let value = self.value(name, &[]);
        assert!(value >= 0.0 && value.fract() == 0.0, "{name} = {value}");
        value as u64
    }

    /// `(le, cumulative count)` of histogram `name` for `labels`, in the order exposed.
    pub(crate) fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(String, u64)> {
        self.samples
            .iter()
            .filter(|s| s.name == format!("{name}_bucket"))
            .filter(|s| labels.iter().all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v)))
            .map(|s| {
                let le = s.labels.iter().find(|(k, _)| k == "le").expect("bucket without le").1.clone();
                (le, s.value as u64)
            })
            .collect()
    }
}

/// Parses the Prometheus text format (0.0.4) strictly: every line a `# HELP`, a `# TYPE` or a
/// sample; every sample of a family whose type was declared before it; names and labels well
/// formed; histogram buckets cumulative and ending at `+Inf` with the count. Panics otherwise.
pub(crate) fn parse_scrape(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    let mut helped = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("HELP without text: {line:?}"));
            assert!(is_name(name) && !help.is_empty(), "bad HELP line {line:?}");
            assert!(helped.insert(name.to_owned()), "second HELP for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
            assert!(is_name(name), "bad name in {line:?}");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line:?}");
            assert!(
                scrape.types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "second TYPE for {name}"
            );
        } else {
            let sample = parse_sample(line);
            let family = family_of(&sample.name, &scrape.types)
                .unwrap_or_else(|| panic!("sample before its TYPE line: {line:?}"));
            assert!(helped.contains(&family), "sample without HELP: {line:?}");
            scrape.samples.push(sample);
        }
    }
    check_histograms(&scrape);
    scrape
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        number => number.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
            let labels = body
                .split("\",")
                .map(|pair| {
                    let (key, quoted) =
                        pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
                    assert!(is_name(key), "bad label name in {line:?}");
                    (key.to_owned(), quoted.trim_end_matches('"').to_owned())
                })
                .collect();
            (name, labels)
        }
        None => (series, Vec::new()),
    };
    assert!(is_name(name), "bad metric name in {line:?}");
    Sample { name: name.to_owned(), labels, value }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The declared family a sample belongs to: itself, or a histogram it is a part of.
fn family_of(sample: &str, types: &HashMap<String, String>) -> Option<String> {
    if types.contains_key(sample) {
        return Some(sample.to_owned());
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| sample.strip_suffix(suffix))
        .find(|base| types.get(*base).is_some_and(|t| t == "histogram"))
        .map(str::to_owned)
}

/// A sample's labels other than `le`: which series of a histogram it belongs to.
type Labels = Vec<(String, String)>;

fn check_histograms(scrape: &Scrape) {
    for (family, _) in scrape.types.iter().filter(|(_, kind)| *kind == "histogram") {
        let mut series: HashMap<Labels, Vec<(String, u64)>> = HashMap::new();
        for sample in scrape.samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
            let labels: Vec<_> = sample.labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            let le = sample.labels.iter().find(|(k, _)| k == "le").expect("bucket without le").1.clone();
            series.entry(labels).or_default().push((le, sample.value as u64));
        }
        assert!(!series.is_empty(), "histogram {family} has no buckets");
        for (labels, buckets) in series {
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{labels:?} not cumulative: {buckets:?}"
            );
            let (last_le, last) = buckets.last().unwrap();
            assert_eq!(last_le, "+Inf", "{family}{labels:?} must end at +Inf");
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let count = scrape.value(&format!("{family}_count"), &pairs);
            assert_eq!(*last as f64, count, "{family}{labels:?}: +Inf bucket is not the count");
        }
    }
}
