//! upcase-compare's tests, one binary: the C servers build with `-Werror` and answer byte for
//! byte (`c_peers`); the cost counter holds upcase to no allocation per request (`costs`); the
//! harness runs end to end, writes the tables, keeps the analysis and stops what it started, on
//! Ctrl-C too (`harness`). Speed is never asserted: the benchmark itself is not run here.
//!
//! Needs gcc and python3; perf and root for the costs. Where a tool is missing a test says so
//! and passes, unless `UPCASE_REQUIRE_TOOLS` is set (CI), when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs, unreachable_pub)]

mod c_peers;
mod costs;
mod harness;
mod support;
