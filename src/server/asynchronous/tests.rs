//! The async model's own mechanisms, each tested where a regression would not show in the
//! integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::super::Config;
use super::exchange::{deadline_tick, Exchange};

/// An idle connection is a slab entry and a socket; the entry's size is what 10,000 idle
/// connections multiply.
#[test]
fn an_idle_connection_is_a_small_slab_entry() {
    let size = std::mem::size_of::<slab::Slab<Exchange>>().max(std::mem::size_of::<Exchange>());
    assert!(size <= 160, "an exchange is {size} bytes");
}

/// Deadlines are checked often enough to keep each limit within an eighth of itself.
#[test]
fn deadlines_are_checked_at_an_eighth_of_the_shortest_limit() {
    let defaults = Config::default();
    assert_eq!(deadline_tick(&defaults), Duration::from_secs(1));
    let tight = Config { idle_timeout: Some(Duration::from_millis(400)), ..Config::default() };
    assert_eq!(deadline_tick(&tight), Duration::from_millis(50));
    let tiny = Config { write_timeout: Duration::from_millis(1), ..Config::default() };
    assert_eq!(deadline_tick(&tiny), Duration::from_millis(10));
}
