//! The header reader on bytes: every version and command, headers cut anywhere, what follows a
//! header, and each kind of bad one.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::{IpAddr, SocketAddr};

use ppp::v2::{Builder, Command, Protocol, Type, Version};

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A version 2 header from `client` to `server`, with `tlv_bytes` of padding TLV.
fn v2(command: Command, client: &str, server: &str, tlv_bytes: usize) -> Vec<u8> {
    let addresses = match (addr(client), addr(server)) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            ppp::v2::Addresses::from(ppp::v2::IPv4::new(*c.ip(), *s.ip(), c.port(), s.port()))
        }
        (SocketAddr::V6(c), SocketAddr::V6(s)) => {
            ppp::v2::Addresses::from(ppp::v2::IPv6::new(*c.ip(), *s.ip(), c.port(), s.port()))
        }
        _ => unreachable!("one family"),
    };
    let builder = Builder::with_addresses(Version::Two | command, Protocol::Stream, addresses);
    let builder =
        if tlv_bytes > 0 { builder.write_tlv(Type::NoOp, &vec![0; tlv_bytes]).unwrap() } else { builder };
    builder.build().unwrap()
}

/// Feeds `bytes` in pieces of `piece` bytes, as a connection might deliver them; returns the last
/// feed and how many bytes had been fed by then.
fn feed_in_pieces(bytes: &[u8], piece: usize) -> (Feed, usize) {
    let mut reader = HeaderReader::default();
    let mut fed = 0;
    for chunk in bytes.chunks(piece) {
        fed += chunk.len();
        match reader.feed(chunk) {
            Feed::More => {}
            done => return (done, fed - chunk.len()),
        }
    }
    (Feed::More, fed)
}

#[test]
fn version_1_names_the_client_and_leaves_what_follows() {
    let mut reader = HeaderReader::default();
    let header = b"PROXY TCP4 198.51.100.7 192.0.2.1 40022 12000\r\n";
    let bytes = [&header[..], b"hello"].concat();
    let client = Some(addr("198.51.100.7:40022"));
    assert_eq!(
        reader.feed(&bytes),
        Feed::Done { header: Proxied { client, version: 1 }, consumed: header.len() }
    );
    let v6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 40022 12000\r\n";
    assert!(matches!(
        HeaderReader::default().feed(v6),
        Feed::Done { header: Proxied { client: Some(c), .. }, consumed } if c == addr("[2001:db8::7]:40022") && consumed == v6.len()
    ));
    let unknown = b"PROXY UNKNOWN\r\n";
    assert_eq!(
        HeaderReader::default().feed(unknown),
        Feed::Done { header: Proxied { client: None, version: 1 }, consumed: unknown.len() }
    );
}

#[test]
fn version_2_names_the_client_and_local_stands_for_the_proxy() {
    let header = v2(Command::Proxy, "10.1.2.3:5555", "127.0.0.1:12000", 0);
    let bytes = [&header[..], b"after"].concat();
    assert_eq!(
        HeaderReader::default().feed(&bytes),
        Feed::Done {
            header: Proxied { client: Some(addr("10.1.2.3:5555")), version: 2 },
            consumed: header.len()
        }
    );
    let v6 = v2(Command::Proxy, "[2001:db8::3]:7", "[::1]:12000", 100);
    assert!(matches!(
        HeaderReader::default().feed(&v6),
        Feed::Done { header: Proxied { client: Some(c), version: 2 }, consumed } if c == addr("[2001:db8::3]:7") && consumed == v6.len()
    ));
    let local = v2(Command::Local, "127.0.0.1:1", "127.0.0.1:2", 0);
    assert_eq!(
        HeaderReader::default().feed(&local),
        Feed::Done { header: Proxied { client: None, version: 2 }, consumed: local.len() }
    );
}

/// Cut anywhere, a header is read whole, and the client's bytes after it are where `consumed`
/// says, in the chunk that completed it.
#[test]
fn a_header_in_pieces_is_read_whole() {
    let v1 = b"PROXY TCP4 198.51.100.7 192.0.2.1 40022 12000\r\n".to_vec();
    let v2 = v2(Command::Proxy, "10.1.2.3:5555", "127.0.0.1:12000", 300);
    for header in [v1, v2] {
        let bytes = [&header[..], b"client bytes"].concat();
        for piece in [1, 2, 5, 13, 16, 17, 100] {
            let (feed, fed_before) = feed_in_pieces(&bytes, piece);
            let Feed::Done { consumed, header: proxied } = feed else { panic!("{piece}: {feed:?}") };
            assert_eq!(fed_before + consumed, header.len(), "piece {piece}");
            assert!(proxied.client.is_some());
        }
    }
}

#[test]
fn anything_but_a_signature_is_a_missing_header() {
    for bytes in [
        &b"hello world"[..],
        b"GET / HTTP/1.1\r\n",
        b"PROXZ",
        b"proxy tcp4",
        b"\r\n\r\n\0\r\nQUIX",
        b"\x16\x03\x01",
    ] {
        assert_eq!(HeaderReader::default().feed(bytes), Feed::Rejected(Rejection::Missing), "{bytes:?}");
    }
    // Known as missing from the first byte that differs, whatever follows.
    let (feed, _) = feed_in_pieces(b"PROBABLY NOT", 1);
    assert_eq!(feed, Feed::Rejected(Rejection::Missing));
}

#[test]
fn bad_headers_are_malformed() {
    let bad_v1: [&[u8]; 5] = [
        b"PROXY TCP4 300.1.1.1 192.0.2.1 1 2\r\n",
        b"PROXY TCP4 198.51.100.7 192.0.2.1 99999 2\r\n",
        b"PROXY SCTP 198.51.100.7 192.0.2.1 1 2\r\n",
        b"PROXY TCP4 198.51.100.7 192.0.2.1 1 2\rX",
        b"PROXY TCP4 \xff\xfe 192.0.2.1 1 2\r\n",
    ];
    for bytes in bad_v1 {
        assert!(
            matches!(HeaderReader::default().feed(bytes), Feed::Rejected(Rejection::Malformed(_))),
            "{bytes:?}"
        );
    }
    let mut bad_version = v2(Command::Proxy, "10.1.2.3:5555", "127.0.0.1:12000", 0);
    bad_version[12] = 0x31;
    let mut bad_command = v2(Command::Proxy, "10.1.2.3:5555", "127.0.0.1:12000", 0);
    bad_command[12] = 0x2F;
    let mut short_addresses = v2(Command::Proxy, "10.1.2.3:5555", "127.0.0.1:12000", 0);
    short_addresses[15] = 4;
    for bytes in [bad_version, bad_command, short_addresses] {
        assert!(
            matches!(HeaderReader::default().feed(&bytes), Feed::Rejected(Rejection::Malformed(_))),
            "{bytes:?}"
        );
    }
}

/// A header longer than accepted is rejected as soon as that is known, without waiting for (or
/// keeping) the rest: a v1 line with no end, a v2 that declares too much.
#[test]
fn oversized_headers_are_rejected_early() {
    let endless = [&b"PROXY UNKNOWN "[..], &[b'x'; 200]].concat();
    let (feed, fed_before) = feed_in_pieces(&endless, 10);
    assert!(matches!(feed, Feed::Rejected(Rejection::Malformed(_))), "{feed:?}");
    assert!(fed_before < MAX_V1, "rejected after {fed_before} bytes");

    let large = v2(Command::Proxy, "10.1.2.3:5555", "127.0.0.1:12000", MAX_V2);
    let (feed, fed_before) = feed_in_pieces(&large, 8);
    assert!(
        matches!(feed, Feed::Rejected(Rejection::Malformed(ref why)) if why.contains("over the")),
        "{feed:?}"
    );
    assert_eq!(fed_before, 8, "known from the length field, in the second piece");

    let largest = v2(Command::Proxy, "10.1.2.3:5555", "127.0.0.1:12000", MAX_V2 - 16 - 12 - 3);
    assert_eq!(largest.len(), MAX_V2);
    assert!(matches!(feed_in_pieces(&largest, 7).0, Feed::Done { .. }));
}

#[test]
fn a_trusted_proxy_is_one_in_a_listed_network() {
    let proxy = ProxyProtocol {
        trusted: vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ],
        header_timeout: ProxyProtocol::DEFAULT_HEADER_TIMEOUT,
    };
    for (ip, trusted) in [
        ("127.0.0.1", true),
        ("127.0.0.2", false),
        ("10.200.0.1", true),
        ("::ffff:10.0.0.1", true),
        ("2001:db8:ffff::1", true),
        ("2001:db9::1", false),
        ("::1", false),
    ] {
        assert_eq!(proxy.trusts(ip.parse::<IpAddr>().unwrap()), trusted, "{ip}");
    }
}
