//! The open TCP connections of one server, whatever the model: the one place their number is
//! limited, what the end of a shutdown closes, and what the status page lists.
//!
//! Admitting and releasing a connection costs two atomic operations. Entries (a key, a way to the
//! socket, when it opened) are kept only where something needs them: always in the blocking
//! models, whose threads blocked in `read` or `write` only a shutdown of their socket can
//! interrupt; and in every model when an admin endpoint watches the server. So the default model,
//! unwatched, takes no lock per connection. Behind a proxy (`--proxy-protocol`), an entry also
//! records the client the proxy named, which the status page shows in place of the proxy's
//! address; without it, nothing is recorded or looked up for that.
//!
//! This module never does I/O on a connection beyond shutting it down or asking the kernel
//! about it for the status page, and never holds its lock across more than one connection's
//! system calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How the set reaches one connection's socket.
#[derive(Debug)]
pub(crate) enum Socket {
    /// Blocking models: a second handle on the socket, owned here.
    Owned(std::net::TcpStream),
    /// The async model: the descriptor of a socket its worker owns. The worker takes the entry
    /// out of the set (under the lock) before it closes the socket, so while the entry is here
    /// and the lock is held, the descriptor is this connection's.
    Worker(RawFd),
}

/// One open connection's entry.
#[derive(Debug)]
pub(crate) struct Entry {
    socket: Socket,
    /// When it opened, in milliseconds since the set was made, wrapping every 49.7 days (ages are
    /// computed with wrapping arithmetic); 0 when the server is not watched.
    opened_ms: u32,
}

/// The set. See the module's documentation.
#[derive(Debug)]
pub(crate) struct ConnectionSet {
    open: AtomicUsize,
    closing: AtomicBool,
    next_key: AtomicU64,
    /// Whether entries are kept (see the module's documentation).
    keeps_entries: bool,
    /// Whether an admin endpoint watches: entries carry when they opened.
    observed: bool,
    /// Whether connections come through a proxy, whose clients are recorded.
    proxied: bool,
    epoch: Instant,
    entries: Mutex<Entries>,
}

/// The entries, and the clients named by a proxy, by connection key: apart, so that an entry
/// stays small when there is no proxy.
#[derive(Debug, Default)]
struct Entries {
    open: HashMap<u64, Entry>,
    clients: HashMap<u64, SocketAddr>,
}

impl ConnectionSet {
    /// An empty set; `blocking`: the model's threads need a way to be interrupted; `observed`: an
    /// admin endpoint lists the connections; `proxied`: a proxy names each connection's client.
    pub(crate) fn new(blocking: bool, observed: bool, proxied: bool) -> Self {
        Self {
            open: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            next_key: AtomicU64::new(0),
            keeps_entries: blocking || observed,
            observed,
            proxied,
            epoch: Instant::now(),
            entries: Mutex::default(),
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// How long since the set was made (with the server).
    pub(crate) fn age(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Milliseconds since the epoch, truncated to 32 bits on purpose (see [`Entry::opened_ms`]).
    fn now_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Takes a place under `limit` and returns the connection's key; `None` when `limit` are
    /// already open.
    pub(crate) fn take_place(&self, limit: usize) -> Option<u64> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < limit).then_some(open + 1));
        taken.ok().map(|_| self.next_key.fetch_add(1, Ordering::Relaxed))
    }

    /// Keeps an entry for the connection `key`, if this set keeps entries; `socket` is only
    /// called then. A connection admitted while everything is being closed is closed at once.
    pub(crate) fn enter(&self, key: u64, socket: impl FnOnce() -> Option<Socket>) {
        if !self.keeps_entries {
            return;
        }
        let Some(socket) = socket() else { return };
        let opened_ms = if self.observed { self.now_ms() } else { 0 };
        let mut entries = self.entries();
        if self.closing() {
            shut_down(&socket);
        }
        entries.open.insert(key, Entry { socket, opened_ms });
    }

    /// Records the client a proxy named for the connection `key`, for the status page, if this
    /// set keeps entries.
    pub(crate) fn record_client(&self, key: u64, client: SocketAddr) {
        if self.keeps_entries && self.proxied {
            self.entries().clients.insert(key, client);
        }
    }

    /// Frees the place of the connection `key`, which has ended, and drops its entry; returns how
    /// long it was open when the server is watched.
    pub(crate) fn release(&self, key: u64) -> Option<Duration> {
        self.open.fetch_sub(1, Ordering::AcqRel);
        if !self.keeps_entries {
            return None;
        }
        let mut entries = self.entries();
        if self.proxied {
            entries.clients.remove(&key);
        }
        let entry = entries.open.remove(&key)?;
        drop(entries);
        self.observed.then(|| Duration::from_millis(self.now_ms().wrapping_sub(entry.opened_ms).into()))
    }

    /// Refuses new connections from now on and shuts down every blocking connection's socket,
    /// which a thread blocked in `read` or `write` sees at once. (The async model's workers
    /// close their own connections when woken.)
    pub(crate) fn close_all(&self) {
        self.closing.store(true, Ordering::Release);
        for entry in self.entries().open.values() {
            shut_down(&entry.socket);
        }
    }

    /// Whether the end of a shutdown has begun.
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Calls `visit` with the age of every connection with an entry and its key, under the lock:
    /// `visit` must only copy what it needs.
    pub(crate) fn each_age(&self, mut visit: impl FnMut(Duration, u64)) {
        let now = self.now_ms();
        for (&key, entry) in self.entries().open.iter() {
            visit(Duration::from_millis(now.wrapping_sub(entry.opened_ms).into()), key);
        }
    }

    /// Calls `inspect` with the socket of the connection `key` while it is certainly open (the set
    /// stays locked meanwhile, so `inspect` must be brief: a few system calls), and the client a
    /// proxy named for it, if any; `None` if it has ended.
    pub(crate) fn inspect<T>(
        &self,
        key: u64,
        inspect: impl FnOnce(BorrowedFd<'_>, Option<SocketAddr>) -> T,
    ) -> Option<T> {
        let entries = self.entries();
        let client = entries.clients.get(&key).copied();
        match &entries.open.get(&key)?.socket {
            Socket::Owned(stream) => Some(inspect(stream.as_fd(), client)),
            Socket::Worker(fd) => {
                // SAFETY: the worker owns this descriptor and closes it only after it has taken the
                // entry out of the set, which takes this lock: while the entry is here and the
                // lock is held, the descriptor is open and is this connection's socket.
                let fd = unsafe { BorrowedFd::borrow_raw(*fd) };
                Some(inspect(fd, client))
            }
        }
    }
}

/// Shuts a blocking connection's socket down; a worker's connections are its worker's to close.
fn shut_down(socket: &Socket) {
    if let Socket::Owned(stream) = socket {
        // Fails only if the client already closed, which is what we want anyway.
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}
