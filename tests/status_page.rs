//! The status page (`GET /` of `upcase serve --admin`) in a real browser: Debian's headless
//! Chromium loads it, its script polls `/status.json`, and the DOM it builds shows a real open
//! connection's 4-tuple with the bytes sent each way, the welcoming sockets, and counters that
//! match the traffic.
//!
//! Without Chromium the test skips with a note, unless `UPCASE_REQUIRE_TOOLS=1` (CI), where its
//! absence fails it.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};

use support::admin::{get_until, serve_with_admin};
use support::{dump_dom, has_chromium, PATIENCE};

/// The text of each cell (`<td>` or `<th>`) of the first table row whose opening tag contains
/// `marker` (the page marks rows with `data-connection` and `data-counter`).
fn row_cells(dom: &str, marker: &str) -> Vec<String> {
    let start = dom.find(marker).unwrap_or_else(|| panic!("no row {marker} in the page:\n{dom}"));
    let row = &dom[start..start + dom[start..].find("</tr>").unwrap()];
    row.split("<t")
        .skip(1)
        .filter(|cell| cell.starts_with('d') || cell.starts_with('h'))
        .map(|cell| {
            let text = &cell[cell.find('>').unwrap() + 1..];
            text[..text.find('<').unwrap_or(text.len())].to_owned()
        })
        .collect()
}

/// Must hold: the page, rendered by Chromium from nothing but what the endpoint serves, lists the
/// welcoming sockets; the open connection's row shows the client's and the server's address and
/// port exactly as the client sees them, its state, and the kernel's bytes each way; the counters
/// equal the traffic sent; the badge says serving.
#[test]
fn the_status_page_shows_a_live_connection_in_a_real_browser() {
    if !has_chromium() {
        return;
    }
    let server = serve_with_admin(&[], &[]);
    let message = "hello, straße";
    let mut stream = TcpStream::connect_timeout(&server.tcp, PATIENCE).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(message.as_bytes()).unwrap();
    let mut reply = vec![0; "HELLO, STRASSE".len()];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(reply, b"HELLO, STRASSE");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(PATIENCE)).unwrap();
    udp.send_to(b"one datagram", server.udp).unwrap();
    let mut datagram = [0; 64];
    assert_eq!(udp.recv(&mut datagram).unwrap(), 12);
    // The kernel counts the reply once the client has acknowledged it.
    get_until(server.admin, "/status.json", "the reply acknowledged", |r| {
        r.body.contains(&format!("\"bytes_acked\":{}", reply.len()))
    });

    let dom = dump_dom(&format!("http://{}/", server.admin));

    let (client, service) = (stream.local_addr().unwrap(), stream.peer_addr().unwrap());
    let connection = row_cells(&dom, "data-connection=");
    // id, client, server, state, age, received, acked, rtt, idle
    assert_eq!(connection[1], client.to_string(), "{connection:?}");
    assert_eq!(connection[2], service.to_string(), "{connection:?}");
    assert_eq!(connection[3], "ESTAB");
    assert_eq!(connection[5], message.len().to_string(), "bytes received: {connection:?}");
    assert_eq!(connection[6], reply.len().to_string(), "bytes acknowledged: {connection:?}");

    let counter = |name: &str| row_cells(&dom, &format!("data-counter=\"{name}\""))[1].clone();
    assert_eq!(counter("tcp_accepted"), "1");
    assert_eq!(counter("tcp_open"), "1");
    assert_eq!(counter("tcp_bytes_in"), message.len().to_string());
    assert_eq!(counter("tcp_bytes_out"), reply.len().to_string());
    assert_eq!(counter("udp_requests"), "1");
    assert_eq!(counter("udp_bytes_in"), "12");

    let listening = dom.split("<tbody id=\"listening\">").nth(1).unwrap().split("</tbody>").next().unwrap();
    assert!(listening.contains(&server.tcp.to_string()) && listening.contains(">tcp<"), "{listening}");
    assert!(listening.contains(&server.udp.to_string()) && listening.contains(">udp<"), "{listening}");
    assert!(dom.contains("class=\"badge serving\">serving<"), "the badge");
    assert!(dom.contains("<span id=\"open\">1</span>"), "one connection open");
}
