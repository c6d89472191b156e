//! The flags of `upcase check` that make it run the program under test itself (`--run CMD`,
//! `--dir DIR`, `--isolated`), in a struct of their own flattened into `check`'s. Nothing here
//! starts anything: [`upcase::check::supervised`] does.

use std::path::PathBuf;

use clap::Args;

use upcase::check::program::Spec;
use upcase::check::supervised::Supervision;

/// How `upcase check` runs the program it grades, when it does.
#[derive(Debug, Args)]
pub(super) struct ProgramArgs {
    /// Start the server under test with this command line (run by `sh -c`, in its own process
    /// group), wait until it listens on the port of --to, grade it, and stop it (SIGTERM, then
    /// SIGKILL, the whole group). A probe that kills it gets its last words on its row, and it is
    /// started again; it is watched for CPU spent while idle, threads, processes and zombies left
    /// per connection, a port it cannot rebind at once, and SIGTERM ignored ("runs cleanly").
    #[arg(long, value_name = "CMD")]
    run: Option<String>,

    /// The directory to run the program under test in (--run's server or --client's client: the
    /// submission's).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Run the program and the check in a network namespace of their own (root, or
    /// CAP_SYS_ADMIN): the port is free whatever else runs here, and a restart never waits for a
    /// connection in TIME_WAIT. --to must then be a loopback address.
    #[arg(long, requires = "run")]
    isolated: bool,
}

impl ProgramArgs {
    /// The directory to run the program under test in, if given.
    pub(super) fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref()
    }

    /// What to run, if anything.
    pub(super) fn supervision(&self) -> Option<Supervision> {
        let command = self.run.clone()?;
        let mut spec = Spec::new(command);
        spec.dir.clone_from(&self.dir);
        Some(Supervision { spec, isolated: self.isolated })
    }
}
