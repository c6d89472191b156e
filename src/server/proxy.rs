//! The PROXY protocol (versions 1 and 2) on TCP (`--proxy-protocol`): a balancer in front of the
//! server (HAProxy's `send-proxy`, nginx's `proxy_protocol on`) opens each connection with a
//! header naming the client it accepted, which then stands for the balancer's own address in
//! the logs, the status page and the per-source limit.
//!
//! With it on, every TCP connection must come from a trusted proxy (`--trusted-proxy CIDR`) and
//! start with a header, complete within `--proxy-header-timeout` and at most [`MAX_V1`] or
//! [`MAX_V2`] bytes long. Anything else closes the connection, counted by reason: never a
//! guess, and never an answer, so the bytes of a bad header are never uppercased and sent back.
//! A v2 `LOCAL` header (the balancer's own health check) and a v1 `UNKNOWN` one are served with
//! the proxy's own address, as the protocol says.
//!
//! This module only parses (with the `ppp` crate) and keeps the bytes of a header that comes in
//! pieces, and only while it does; the models do the reading. It must never read past a header:
//! what follows it in the same read is the client's, and the caller serves it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use ppp::PartialResult;

use super::Context;

/// The longest version 1 header, by the protocol's specification.
pub const MAX_V1: usize = 107;

/// The longest version 2 header accepted: its 16 fixed bytes and up to 1 KiB of addresses and
/// TLVs. The largest address block (two Unix paths) is 216 bytes; the TLVs balancers add (a
/// unique id, the TLS server name, a cloud endpoint id) are a few hundred bytes at most.
pub const MAX_V2: usize = 16 + 1024;

const V1_SIGNATURE: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = ppp::v2::PROTOCOL_PREFIX;
/// Bytes of a version 2 header before its addresses: signature, version and command, family and
/// protocol, length.
const V2_FIXED: usize = 16;

/// `--proxy-protocol`: who may send headers, and how long a header may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocol {
    /// The networks of the proxies allowed to connect (`--trusted-proxy`); a connection from
    /// anywhere else is closed at once, whatever it sends.
    pub trusted: Vec<IpNet>,
    /// How long a connection has to send its whole header, counted from when it is accepted and
    /// apart from the idle timeout: the slowloris guard of the header phase.
    pub header_timeout: Duration,
}

impl ProxyProtocol {
    /// The default header timeout: a balancer sends its header at once, with or before the
    /// client's first bytes.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

    /// Whether a connection from `ip` may send a header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|network| network.contains(&ip))
    }
}

/// Why a connection was closed before it was served.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    /// It came from an address outside `--trusted-proxy`.
    #[error("not from a trusted proxy (--trusted-proxy)")]
    Untrusted,
    /// Its first bytes are not a PROXY signature: a client connecting directly, or a proxy not
    /// configured to send the header.
    #[error("no PROXY header: the first bytes are not a PROXY protocol signature")]
    Missing,
    /// A signature followed by something the protocol does not allow, or longer than accepted.
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    /// The connection ended before its header was complete.
    #[error("closed before its PROXY header was complete")]
    Incomplete,
    /// The header was not complete within the header timeout.
    #[error("PROXY header not complete within --proxy-header-timeout")]
    Timeout,
}

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proxied {
    /// The client the proxy accepted; `None` for a `LOCAL` (v2) or `UNKNOWN` (v1) header, or
    /// an address family without one, whose connection stands for itself.
    pub(crate) client: Option<SocketAddr>,
    /// The protocol version, 1 or 2, for the logs.
    pub(crate) version: u8,
}

/// Where a header stands after some bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Feed {
    /// Not complete yet: read more (within the header timeout).
    More,
    /// Complete; its last `consumed` bytes were in the chunk just fed, and what follows them
    /// there is the client's.
    Done { header: Proxied, consumed: usize },
    /// Not a header, or a bad one: close the connection.
    Rejected(Rejection),
}

/// The bytes of a header that arrives in pieces; empty, and owning no memory, when a header
/// arrives in one read, as it nearly always does.
#[derive(Debug, Default)]
pub(crate) struct HeaderReader {
    pending: Vec<u8>,
}

impl HeaderReader {
    /// Takes the next `chunk` read from the connection.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Feed {
        if self.pending.is_empty() {
            match parse(chunk) {
                Parse::Complete(header, len) => return Feed::Done { header, consumed: len },
                Parse::Rejected(rejection) => return Feed::Rejected(rejection),
                Parse::Incomplete => {}
            }
        }
        let before = self.pending.len();
        // `parse` rejects anything longer than the longest header, so this keeps all that matters.
        let kept = chunk.get(..MAX_V2.saturating_sub(before)).unwrap_or(chunk);
        self.pending.extend_from_slice(kept);
        if before == 0 {
            return Feed::More; // parsed just above, as it lay in the chunk
        }
        match parse(&self.pending) {
            Parse::Complete(header, len) => Feed::Done { header, consumed: len - before },
            Parse::Rejected(rejection) => Feed::Rejected(rejection),
            Parse::Incomplete => Feed::More,
        }
    }
}

enum Parse {
    Incomplete,
    /// The header and its length in bytes.
    Complete(Proxied, usize),
    Rejected(Rejection),
}

/// Parses the header at the start of `bytes`, checking the signature first so that anything
/// else is rejected as missing from its first byte, and bounding the length before `ppp` sees it.
fn parse(bytes: &[u8]) -> Parse {
    let signature = match bytes.first() {
        None => return Parse::Incomplete,
        Some(b'P') => V1_SIGNATURE,
        Some(b'\r') => V2_SIGNATURE,
        Some(_) => return Parse::Rejected(Rejection::Missing),
    };
    let seen = bytes.len().min(signature.len());
    if bytes.get(..seen) != signature.get(..seen) {
        return Parse::Rejected(Rejection::Missing);
    }
    let malformed = |why: String| Parse::Rejected(Rejection::Malformed(why));
    if signature == V1_SIGNATURE {
        // A version 1 header is one line: parsed once its CRLF is in, since `ppp` takes a line
        // cut just after a space for a bad one rather than a partial one.
        let line_end = bytes.iter().position(|&b| b == b'\r').map(|cr| (cr, bytes.get(cr + 1)));
        match line_end {
            None if bytes.len() < MAX_V1 => Parse::Incomplete,
            Some((_, None)) => Parse::Incomplete,
            None => malformed(format!("version 1 with no CRLF in its first {MAX_V1} bytes")),
            Some((cr, _)) if cr + 2 > MAX_V1 => malformed(format!("version 1 longer than {MAX_V1} bytes")),
            Some((_, Some(b'\n'))) => match ppp::v1::Header::try_from(bytes) {
                Ok(header) => Parse::Complete(from_v1(&header), header.header.len()),
                Err(e) => malformed(format!("version 1: {e}")),
            },
            Some(_) => malformed("version 1 with a CR not followed by LF".to_owned()),
        }
    } else {
        let declared = match bytes.get(V2_FIXED - 2..V2_FIXED) {
            Some(&[high, low]) => usize::from(u16::from_be_bytes([high, low])),
            _ => return Parse::Incomplete,
        };
        if V2_FIXED + declared > MAX_V2 {
            return malformed(format!(
                "version 2 of {} bytes, over the {MAX_V2} accepted",
                V2_FIXED + declared
            ));
        }
        match ppp::v2::Header::try_from(bytes) {
            Ok(header) => Parse::Complete(from_v2(&header), header.len()),
            Err(e) if e.is_incomplete() => Parse::Incomplete,
            Err(e) => malformed(format!("version 2: {e}")),
        }
    }
}

fn from_v1(header: &ppp::v1::Header<'_>) -> Proxied {
    use ppp::v1::Addresses;
    let client = match header.addresses {
        Addresses::Tcp4(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        Addresses::Tcp6(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        Addresses::Unknown => None,
    };
    Proxied { client, version: 1 }
}

fn from_v2(header: &ppp::v2::Header<'_>) -> Proxied {
    use ppp::v2::{Addresses, Command};
    let client = match (header.command, header.addresses) {
        (Command::Local, _) => None,
        (Command::Proxy, Addresses::IPv4(ip)) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        (Command::Proxy, Addresses::IPv6(ip)) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
        (Command::Proxy, Addresses::Unspecified | Addresses::Unix(_)) => None,
    };
    Proxied { client, version: 2 }
}

/// Logs a connection closed for its header (at most once a second, with how many were not
/// logged since); counting it is for whoever ends the connection.
pub(crate) fn log_rejected(context: &Context, peer: SocketAddr, rejection: &Rejection) {
    if let Some(held_back) = context.proxy_log.allow() {
        tracing::warn!(
            peer = %peer,
            reason = %rejection,
            held_back,
            "closing a connection without serving it (held_back: how many more since the last message)"
        );
    }
}

#[cfg(test)]
mod tests;
