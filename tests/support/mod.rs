//! Helpers for every integration test binary: each declares `mod support;` (or, for a binary in
//! a directory, `#[path = "../support/mod.rs"] mod support;`) and says `use support::*;`.
//!
//! What is where:
//! - `net`: [`PATIENCE`], the bound on every wait; [`connect`]; [`is_timeout`]; whole exchanges:
//!   [`tcp_reply`] (must succeed, returns the reply), [`tcp_reply_and_error`] (returns the reply
//!   and the error that ended it), [`udp_reply`], [`udp_reply_within`]; [`unused_port`].
//! - `in_process`: [`TestServer`], a server in the test's own process on a free port, with its
//!   counters.
//! - `child`: [`Guard`] over a child process; `upcase serve` ([`serve_upcase`]) and
//!   `upcase send` ([`upcase_send`]) as the user runs them; any program run to the end ([`run`]);
//!   the lecture's Python peers ([`serve_python`]); tools a test may skip without
//!   ([`installed`]).
//! - `browser`: a real headless browser for the pages upcase makes ([`dump_dom`]).
//! - `text`: what tests send and what must come back ([`SENTENCE`], [`SENTENCES`],
//!   [`long_message`], an endless stream of [`UNIT`]s and its [`ReplyChecker`]).
//! - here: [`for_each_model!`], which runs a test in every concurrency model (or some).
//!
//! Nothing here may wait without a bound, reach beyond loopback, or leave a process behind: a
//! broken server must fail a test, never hang it.

// Each binary uses a part of this; tests may panic on what they did not expect.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub(crate) mod admin;
pub(crate) mod bench;
mod browser;
pub(crate) mod card;
mod child;
mod in_process;
mod net;
pub(crate) mod proxy;
pub(crate) mod submissions;
mod text;

pub(crate) use browser::*;
pub(crate) use child::*;
pub(crate) use in_process::*;
pub(crate) use net::*;
pub(crate) use text::*;
// So that `use support::*;` brings it into any module, not only the crate root.
pub(crate) use crate::for_each_model;

/// Runs each named test, a `fn(upcase::server::Model)` of the calling module, once per concurrency
/// model, as separate `#[test]`s in the modules `iterative`, `threaded` and `asynchronous` (so a
/// failure reads `tcp::asynchronous::stream_of_100_mib`). A test that applies to some models only
/// names them in brackets:
///
/// ```ignore
/// for_each_model!(stream_of_100_mib, accept_errors_never_stop_the_server: [threaded, asynchronous]);
/// ```
#[macro_export]
macro_rules! for_each_model {
    // Every test sorted: one module per model.
    (@sort [$($iterative:ident)*] [$($threaded:ident)*] [$($asynchronous:ident)*]) => {
        mod iterative {
            $(#[test] fn $iterative() { super::$iterative(upcase::server::Model::Iterative) })*
        }
        mod threaded {
            $(#[test] fn $threaded() { super::$threaded(upcase::server::Model::Threaded) })*
        }
        mod asynchronous {
            $(#[test] fn $asynchronous() { super::$asynchronous(upcase::server::Model::Async) })*
        }
    };
    // The next test, for the models it names.
    (@sort $i:tt $t:tt $a:tt $test:ident: [$($model:ident),+ $(,)?] $(, $($rest:tt)*)?) => {
        $crate::for_each_model!(@place $test [$($model)+] $i $t $a $($($rest)*)?);
    };
    // The next test, for every model.
    (@sort $i:tt $t:tt $a:tt $test:ident $(, $($rest:tt)*)?) => {
        $crate::for_each_model!(@place $test [iterative threaded asynchronous] $i $t $a $($($rest)*)?);
    };
    // Adds `$test` to the list of each model it names.
    (@place $test:ident [] $i:tt $t:tt $a:tt $($rest:tt)*) => {
        $crate::for_each_model!(@sort $i $t $a $($rest)*);
    };
    (@place $test:ident [iterative $($more:ident)*] [$($i:ident)*] $t:tt $a:tt $($rest:tt)*) => {
        $crate::for_each_model!(@place $test [$($more)*] [$($i)* $test] $t $a $($rest)*);
    };
    (@place $test:ident [threaded $($more:ident)*] $i:tt [$($t:ident)*] $a:tt $($rest:tt)*) => {
        $crate::for_each_model!(@place $test [$($more)*] $i [$($t)* $test] $a $($rest)*);
    };
    (@place $test:ident [asynchronous $($more:ident)*] $i:tt $t:tt [$($a:ident)*] $($rest:tt)*) => {
        $crate::for_each_model!(@place $test [$($more)*] $i $t [$($a)* $test] $($rest)*);
    };
    (@place $test:ident [$unknown:ident $($more:ident)*] $($rest:tt)*) => {
        compile_error!(concat!(
            "for_each_model!: `", stringify!($unknown), "` (for ", stringify!($test),
            ") is not a model; the models are iterative, threaded and asynchronous"
        ));
    };
    ($($test:ident $(: [$($model:ident),+ $(,)?])?),+ $(,)?) => {
        $crate::for_each_model!(@sort [] [] [] $($test $(: [$($model),+])?),+);
    };
}
