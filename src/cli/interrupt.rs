//! Ctrl-C and SIGTERM for the commands that start programs under test (`check --run`, `check
//! --client`, `grade`):
//! those programs run in process groups of their own, which the terminal's Ctrl-C does not reach,
//! so the signal is caught here, every group the supervisor started is killed, and upcase exits
//! with 130. Caught with a handler (tokio's), not blocked: a blocked signal would stay blocked in
//! every program started after, which then could not be stopped with SIGTERM.

use std::thread;

use tokio::signal::unix::{signal, SignalKind};

use super::exit;

/// Catches SIGINT and SIGTERM from now on: the programs under test are killed, then upcase
/// exits. Where the handlers cannot be installed, a signal ends upcase as it would anyway, and
/// only the programs' groups outlive it.
pub(super) fn stop_programs_on_signal() {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    let caught = {
        let _context = runtime.enter();
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    let (Ok(mut interrupt), Ok(mut terminate)) = caught else { return };
    thread::spawn(move || {
        let name = runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            }
        });
        upcase::check::program::kill_all();
        eprintln!("upcase: {name}: stopped every program under test");
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
}
