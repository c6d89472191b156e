//! The cost counter counts what a server spends per request, and the figures are what the designs
//! promise: upcase's async model answers a UDP or a TCP request in about two system calls and
//! allocates nothing for it; the C reference allocates nothing per request, nor per connection.
//! Needs perf, and root for the uprobes on glibc's allocator.

use std::time::Duration;

use upcase_compare::measuring::costs::Counter;
use upcase_compare::peers::Peer;
use upcase_compare::workloads::{self, Load};

use crate::support::{has, is_root, one_at_a_time, programs, scratch, upcase_binary};

#[test]
fn no_request_allocates_in_upcase_or_the_c_reference() {
    if !has("gcc") || !has("perf") || !is_root("counting allocations (uprobes)") {
        return;
    }
    let _alone = one_at_a_time();
    let programs = programs(true);
    let counter = Counter::new(upcase_binary(), &scratch("costs"), Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let plan = workloads::all(100);
    let pairs = [
        ("udp-rr-32", Peer::Async),
        ("udp-rr-32", Peer::CTuned),
        ("tcp-rr-32", Peer::Async),
        ("tcp-rr-32", Peer::CTuned),
        ("tcp-crr-4", Peer::CTuned),
        ("tcp-crr-4", Peer::Async),
    ];
    for (id, peer) in pairs {
        let workload = plan.iter().find(|w| w.id == id).unwrap();
        let Load::Bench(load) = workload.load else { panic!("{id} is not a bench load") };
        let costs = counter
            .count(peer, &programs, id, &load)
            .unwrap_or_else(|e| panic!("{id} {}: {e:#}", peer.name()));
        let shown = format!("{id} {}: {costs:?}", peer.name());
        assert!(costs.requests > 1_000, "{shown}");
        let syscalls = costs.per_request(costs.syscalls);
        // Batched UDP can take fewer than one per request; a TCP request about two; a connection,
        // about seven.
        assert!(syscalls > 0.0 && syscalls < 12.0, "{shown}");
        if id.starts_with("tcp-rr") {
            assert!((1.5..3.5).contains(&syscalls), "{shown}");
        }
        // The few allocations of opening 32 connections are spread over all their requests; a
        // connection per request allocates nothing either (a task, a timer and a registration
        // each, before the async model had its own event loops).
        assert!(costs.per_request(costs.allocations) < 0.01, "{shown}");
    }
}
