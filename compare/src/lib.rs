//! upcase-compare: upcase next to other uppercase servers on loopback, all loaded by upcase's own
//! load generator (`upcase::bench`, run in this process), and the results as
//! docs/BENCHMARKS.md.
//!
//! Layout, one module per concern:
//!
//! - [`options`]: the command line, defined once.
//! - [`cleanup`]: what must be undone however a run ends (servers stopped, a kernel setting
//!   restored, probes removed), on Ctrl-C too.
//! - [`tools`]: the programs a run needs: found, installed with apt-get, built (upcase, the C
//!   servers in `compare/peers/`).
//! - [`peers`]: each server: how it is started on a free port, known to be ready, and stopped.
//! - [`workloads`]: what is run against whom, and why a server sits a workload out.
//! - [`measuring`]: one run's figures (requests/s, latency, CPU per request, MB/s), memory per
//!   idle connection, and costs per request counted by `perf stat`.
//! - [`system`]: the machine and the kernel settings that shape the figures.
//! - [`report`]: the Markdown document, with the targets evaluated; the hand-written analysis at
//!   its end is kept.
//! - [`run`](mod@run): the order of things: plan, tools, peers, rounds, costs, report.
//!
//! Nothing here changes upcase: it only starts it, loads it and reads what it costs.

pub mod cleanup;
pub mod measuring;
pub mod options;
pub mod peers;
pub mod report;
pub mod run;
pub mod system;
pub mod tools;
pub mod workloads;

pub use options::Options;
pub use run::run;
