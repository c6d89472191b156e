//! The supervisor of a program under test: a student's server or client, run from a command line,
//! for `upcase check --run`, `--client` and `upcase grade`.
//!
//! It starts the command (`sh -c CMD`) in a process group of its own, with stdout and stderr kept
//! in bounded tails; waits, within a bound, until the program answers (a probe the caller gives,
//! such as [`Program::serves`]); tells when it died and what it said as it died; restarts it,
//! waiting out a port still held by a connection in TIME_WAIT (and saying so: the program lacks
//! `SO_REUSEADDR`); watches what its processes cost while it runs; and stops it: SIGTERM to the
//! whole group, SIGKILL to the group after a grace, then reaping.
//!
//! It must never leave anything it started running: every process of the group is signalled, the
//! group's leader is reaped only after the group is gone (so its id cannot be reused while it is
//! still signalled), and dropping a [`Program`] kills the group. Out of reach, and so out of
//! scope: a process that leaves the group (`setsid`, `setpgid`, a daemon's double fork). It never
//! prints; everything it learns comes back as plain data for the caller to turn into rows.

mod capture;
mod command;
mod last_words;
mod outcome;
mod running;
mod sockets;
mod watch;

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub use capture::Output;
use capture::{feed, Capture};
use command::exec_if_simple;
pub use command::Spec;
pub use last_words::{last_words, says_address_in_use, LastWords};
pub use outcome::{Ending, Exit, ProgramError, Ready, Stopped};
pub use running::kill_all;
pub use sockets::{port_holder, tcp_port_in_time_wait};
use watch::Watcher;
pub use watch::{CpuUse, Sample, Watch};

use crate::bench::process::{group_members, stat, Process};
use crate::net::Transport;

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(20);
/// How long a wait for the last words lasts once the program has exited.
const LAST_WORDS_WAIT: Duration = Duration::from_millis(200);
/// How long the group may take to vanish after SIGKILL (it cannot refuse; this bounds the wait).
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The pause before starting again a program that could not bind its port.
const REBIND_PAUSE: Duration = Duration::from_millis(500);
/// The most of stderr an [`Exit`] carries.
const LAST_WORDS_BYTES: usize = 4096;

/// A running program under test; dropping it kills its whole process group.
#[derive(Debug)]
pub struct Program {
    spec: Spec,
    child: Child,
    started: Instant,
    stdout: Capture,
    stderr: Capture,
    watcher: Watcher,
    /// How it ended, once seen (the leader stays unreaped until the group is gone).
    exit: Option<Exit>,
    /// Set once stopped and reaped: nothing of this run may be signalled any more.
    stopped: Option<Stopped>,
}

impl Program {
    /// Starts `spec.command` with `sh -c`, in a new process group.
    ///
    /// # Errors
    /// [`ProgramError::Dir`] or [`ProgramError::Spawn`] when it cannot be started at all.
    pub fn start(spec: Spec) -> Result<Self, ProgramError> {
        if let Some(dir) = spec.dir.as_ref().filter(|dir| !dir.is_dir()) {
            let source = io::Error::new(io::ErrorKind::NotFound, "no such directory");
            return Err(ProgramError::Dir { command: spec.command.clone(), dir: dir.clone(), source });
        }
        let mut command = Command::new("sh");
        command.arg("-c").arg(exec_if_simple(&spec.command)).process_group(0);
        command.stdin(if spec.input.is_some() { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(dir) = &spec.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .spawn()
            .map_err(|source| ProgramError::Spawn { command: spec.command.clone(), source })?;
        let stdout = Capture::start(child.stdout.take(), spec.keep);
        let stderr = Capture::start(child.stderr.take(), spec.keep);
        if let (Some(stdin), Some(input)) = (child.stdin.take(), spec.input.clone()) {
            feed(stdin, input);
        }
        running::started(child.id());
        let watcher = Watcher::start(child.id());
        Ok(Self { spec, child, started: Instant::now(), stdout, stderr, watcher, exit: None, stopped: None })
    }

    /// The id of the program's process group, and of its leader: the program itself, or `sh`
    /// in front of a compound command.
    pub fn group(&self) -> u32 {
        self.child.id()
    }

    /// Waits, at most `within`, until `ready` says the program answers (polled every 20 ms). A
    /// program that dies because its port is still held ("Address already in use", or a TIME_WAIT
    /// connection on [`Spec::port`]) is started again until the bound; [`Ready::refused_bind`]
    /// then says so.
    ///
    /// # Errors
    /// [`ProgramError::NotReady`] when it exits for another reason or does not answer in time.
    pub fn wait_ready(
        &mut self,
        within: Duration,
        ready: impl FnMut(&Self) -> bool,
    ) -> Result<Ready, ProgramError> {
        self.ready_within(within, ready, true)
    }

    /// [`Program::wait_ready`], except that a program that cannot bind its port because a
    /// connection in TIME_WAIT holds it is not waited out: [`ProgramError::NotReady`] says so at
    /// once (`port_held`), so a caller can report the finding and free the port some other way.
    ///
    /// # Errors
    /// [`ProgramError::NotReady`] when it exits or does not answer in time.
    pub fn try_ready(
        &mut self,
        within: Duration,
        ready: impl FnMut(&Self) -> bool,
    ) -> Result<Ready, ProgramError> {
        self.ready_within(within, ready, false)
    }

    fn ready_within(
        &mut self,
        within: Duration,
        mut ready: impl FnMut(&Self) -> bool,
        wait_out: bool,
    ) -> Result<Ready, ProgramError> {
        let began = Instant::now();
        let deadline = began + within;
        let (mut starts, mut refused_bind) = (1, None);
        loop {
            if ready(self) {
                self.watcher.mark_ready(watch::read(self.group()).sample);
                return Ok(Ready { after: began.elapsed(), starts, refused_bind });
            }
            if let Some(exit) = self.exited() {
                let port_held = says_address_in_use(&exit.stderr_tail) || self.port_held();
                if port_held && wait_out {
                    refused_bind.get_or_insert_with(|| exit.last_words().error.unwrap_or_default());
                    // Started again once the port is free, not a hundred times in a minute.
                    thread::sleep(REBIND_PAUSE.min(deadline.saturating_duration_since(Instant::now())));
                    while self.port_held() && Instant::now() < deadline {
                        thread::sleep(POLL);
                    }
                }
                if !port_held || !wait_out || Instant::now() >= deadline {
                    return Err(self.not_ready(within, Some(exit), port_held));
                }
                self.respawn()?;
                starts += 1;
                continue;
            }
            if Instant::now() >= deadline {
                return Err(self.not_ready(within, None, self.port_held()));
            }
            thread::sleep(POLL);
        }
    }

    /// Stops the program if it runs, starts it again and waits, at most `within`, until it
    /// answers (see [`Program::wait_ready`]). The stop comes back too: how the previous run ended.
    ///
    /// # Errors
    /// As [`Program::start`] and [`Program::wait_ready`].
    pub fn restart(
        &mut self,
        within: Duration,
        ready: impl FnMut(&Self) -> bool,
    ) -> Result<(Stopped, Ready), ProgramError> {
        let stopped = self.start_again()?;
        Ok((stopped, self.wait_ready(within, ready)?))
    }

    /// Stops the program if it runs and starts it again, without waiting for it to answer; how
    /// the previous run ended comes back.
    ///
    /// # Errors
    /// As [`Program::start`].
    pub fn start_again(&mut self) -> Result<Stopped, ProgramError> {
        let stopped = self.stop();
        self.respawn()?;
        Ok(stopped)
    }

    /// How the program ended, if it has (it stays unreaped, so its group cannot be reused).
    pub fn exited(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            let pid = Pid::from_raw(i32::try_from(self.child.id()).ok()?);
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            let (code, signal) = match waitid(Id::Pid(pid), flags) {
                Ok(WaitStatus::Exited(_, code)) => (Some(code), None),
                Ok(WaitStatus::Signaled(_, signal, _)) => (None, Some(signal as i32)),
                _ => return None,
            };
            self.exit = Some(self.exit_with(code, signal));
        }
        self.exit.clone()
    }

    /// Waits, at most `within`, for the program to exit by itself (a client that has answered).
    pub fn wait_exit(&mut self, within: Duration) -> Option<Exit> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = self.exited() {
                return Some(exit);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// Stops the program and everything it started: SIGTERM to the group, SIGKILL to the group
    /// if anything of it still runs after [`Spec::grace`], then reaps it. Stopping a stopped
    /// program returns the same answer again.
    pub fn stop(&mut self) -> Stopped {
        if let Some(stopped) = &self.stopped {
            return stopped.clone();
        }
        let had_exited = self.exited().is_some();
        let mut ending = Ending::Exited;
        if !self.gone(Duration::ZERO) {
            self.signal(Signal::SIGTERM);
            ending = if had_exited { Ending::Exited } else { Ending::Terminated };
            if !self.gone(self.spec.grace) {
                self.signal(Signal::SIGKILL);
                ending = Ending::Killed;
                self.gone(KILL_WAIT);
            }
        }
        let left_running = self.living();
        let exit = self.reap();
        // Everything it printed is in the tail once every process holding stdout has exited.
        self.stdout.wait_closed(LAST_WORDS_WAIT);
        self.watcher.finish();
        let stopped = Stopped { exit, ending, left_running };
        self.stopped = Some(stopped.clone());
        stopped
    }

    /// Whether a process of the group holds a socket of `transport` bound to `port` that can take
    /// requests (TCP: listening): the usual readiness probe. Passive: it opens no connection,
    /// which some servers would die of or spend their only `accept()` on.
    pub fn serves(&self, transport: Transport, port: u16) -> bool {
        sockets::serves_port(&group_members(self.group()).unwrap_or_default(), transport, port)
    }

    /// The ports on which the program serves `transport` (TCP: listens), whichever they are.
    pub fn serving(&self, transport: Transport) -> Vec<u16> {
        sockets::served(&group_members(self.group()).unwrap_or_default(), transport)
    }

    /// The group now: processes, threads, zombies, CPU time.
    pub fn sample(&self) -> Sample {
        watch::read(self.group()).sample
    }

    /// What the background sampling saw since this run started.
    pub fn watch(&self) -> Watch {
        self.watcher.watch()
    }

    /// CPU the group uses, and wants, over the next `period` (blocks that long): measured while
    /// no one talks to it, [`CpuUse::wanted`] well above zero is a program spinning.
    pub fn cpu_over(&self, period: Duration) -> CpuUse {
        let (before, began) = (watch::schedules(self.group()), Instant::now());
        thread::sleep(period);
        let after = watch::schedules(self.group());
        watch::use_between(&before, &after, began.elapsed())
    }

    /// The end of what the program wrote on stdout so far.
    pub fn stdout(&self) -> Output {
        self.stdout.output()
    }

    /// The end of what the program wrote on stderr so far.
    pub fn stderr(&self) -> Output {
        self.stderr.output()
    }

    fn respawn(&mut self) -> Result<(), ProgramError> {
        self.stop();
        *self = Self::start(self.spec.clone())?;
        Ok(())
    }

    /// Whether the program's TCP port is still held by a connection in TIME_WAIT.
    fn port_held(&self) -> bool {
        self.spec.port.is_some_and(tcp_port_in_time_wait)
    }

    fn not_ready(&self, within: Duration, exit: Option<Exit>, port_held: bool) -> ProgramError {
        ProgramError::NotReady { command: self.spec.command.clone(), within, exit, port_held }
    }

    fn exit_with(&self, code: Option<i32>, signal: Option<i32>) -> Exit {
        // Its last words are all there once every process holding stderr has exited.
        self.stderr.wait_closed(LAST_WORDS_WAIT);
        let tail = self.stderr.output().bytes;
        let tail = tail.get(tail.len().saturating_sub(LAST_WORDS_BYTES)..).unwrap_or_default();
        Exit {
            code,
            signal,
            stderr_tail: String::from_utf8_lossy(tail).into_owned(),
            ran_for: self.started.elapsed(),
        }
    }

    /// The group's processes that still run (zombies are done: their parent has to reap them).
    fn living(&self) -> Vec<u32> {
        let running = |pid: &u32| stat(Process::Pid(*pid)).is_ok_and(|stat| stat.state != 'Z');
        group_members(self.group()).unwrap_or_default().into_iter().filter(running).collect()
    }

    /// Waits, at most `within`, until nothing of the group runs; whether that happened.
    fn gone(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.living().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    fn signal(&self, signal: Signal) {
        if self.stopped.is_none() {
            if let Ok(group) = i32::try_from(self.group()) {
                // ESRCH: the group is already gone, which is what was wanted.
                let _ = killpg(Pid::from_raw(group), signal);
            }
        }
    }

    /// Reaps the leader (after the group is gone) and says how it ended.
    fn reap(&mut self) -> Exit {
        let status = self.child.try_wait().ok().flatten();
        running::reaped(self.group());
        let exit = self.exit.take().unwrap_or_else(|| {
            let (code, signal) = status.map_or((None, None), |s| (s.code(), s.signal()));
            self.exit_with(code, signal)
        });
        self.exit = Some(exit.clone());
        exit
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if self.stopped.is_none() {
            self.signal(Signal::SIGKILL);
            self.gone(KILL_WAIT);
            let _ = self.child.try_wait();
            running::reaped(self.group());
        }
    }
}
