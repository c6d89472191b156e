//! Every exit status `upcase` uses, in one place, so that scripts can rely on them. Per
//! subcommand (bad flags exit 2 everywhere, as clap's usage errors do):
//!
//! | status | `serve` | `send` | `bench` | `check` | `grade` |
//! |---|---|---|---|---|---|
//! | 0 | stopped by a signal, cleanly | every request answered | every reply right | `PASS`, `PASS_WITH_WARNINGS` | every submission graded, whatever its grade |
//! | 1 | could not start (bind) | a request failed | a wrong or missing reply | `FAIL` | some submission could not be graded (`CANNOT_RUN`) |
//! | 2 | bad flags | bad flags | nothing to measure | `CANNOT_RUN`, a bad `--rubric`, `--isolated` refused, or `--client`'s server cannot be played at `--to` | a bad class file (its line named), `--rubric` or `--out` |
//! | 3 | | | a `--fail-if` threshold breached | `INCOMPLETE` (the budget ran out first) | |
//! | 130 | a second signal during the grace period | | | stopped by Ctrl-C or SIGTERM (with `--run` or `--client`) | stopped by Ctrl-C or SIGTERM |

/// The command did what it was asked: served until stopped, got every reply, nothing failed.
pub(super) const OK: u8 = 0;
/// The command ran and found a failure: no reply, a refused connection, a wrong reply in a
/// bench, a failed row on a check card, a server that could not bind.
pub(super) const FAILED: u8 = 1;
/// The command could not run at all: bad flags (clap's own usage errors also exit 2), or
/// nothing to measure or grade at the address.
pub(super) const CANNOT_RUN: u8 = 2;
/// `check`: nothing failed, but the time budget ran out before every probe had run, so the card
/// is not a pass.
pub(super) const INCOMPLETE: u8 = 3;
/// `bench` (and `bench merge`): the run was measured and a `--fail-if` threshold was breached.
pub(super) const THRESHOLD: u8 = 3;
/// `serve`: a second Ctrl-C or SIGTERM during the grace period ended it at once; `check --run`
/// and `grade`: Ctrl-C or SIGTERM stopped them and the programs they ran (128 + SIGINT, as shells
/// report an interrupted program).
pub(super) const INTERRUPTED: u8 = 130;
