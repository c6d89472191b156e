//! What the tests share: tools that may be missing, scratch directories, the upcase binary and
//! the C servers, built once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use upcase_compare::peers::{Peer, Programs};
use upcase_compare::tools;

/// Bound on any single wait (they take milliseconds normally).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Whether `tool` is on PATH; if not, says so (the caller skips), or fails under
/// `UPCASE_REQUIRE_TOOLS`.
pub fn has(tool: &str) -> bool {
    let found = tools::find(tool).is_some();
    if !found {
        assert!(
            std::env::var_os("UPCASE_REQUIRE_TOOLS").is_none(),
            "{tool} is required here but not installed"
        );
        eprintln!(
            "{tool} is not installed; skipping (install it, or set UPCASE_REQUIRE_TOOLS to require it)"
        );
    }
    found
}

/// Whether this runs as root; if not, says so (the caller skips), or fails under
/// `UPCASE_REQUIRE_TOOLS`.
pub fn is_root(why: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        assert!(std::env::var_os("UPCASE_REQUIRE_TOOLS").is_none(), "{why} needs root");
        eprintln!("{why} needs root; skipping");
    }
    root
}

/// A fresh directory for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("compare-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The C servers, built once with every warning an error (as the harness builds them).
pub fn c_servers() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = scratch("c");
        let build = |name: &str| {
            let binary = dir.join(name);
            tools::build_c(&tools::root().join("compare/peers").join(format!("{name}.c")), &binary)
                .unwrap_or_else(|e| panic!("{e:#}"));
            binary
        };
        (build("tuned_upper"), build("epoll_upper"))
    })
}

/// upcase's binary, built once with `cargo build --bin upcase` into the target directory these
/// tests run from (cargo releases its lock before it runs tests; the libraries are already
/// built, so this only links the binary).
pub fn upcase_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap(); // target/debug/deps/.. → target/debug
        let target_dir = profile_dir.parent().unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(tools::root())
            .args(["build", "--quiet", "--bin", "upcase", "--target-dir"])
            .arg(target_dir);
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        let out = tools::run_bounded(cargo, Duration::from_secs(600)).unwrap();
        assert!(out.status.success(), "cargo build --bin upcase: {}", String::from_utf8_lossy(&out.stderr));
        profile_dir.join("upcase")
    })
}

/// Programs for the peers these tests start.
pub fn programs(with_upcase: bool) -> Programs {
    let (tuned, epoll) = c_servers();
    Programs {
        root: tools::root(),
        upcase: with_upcase.then(|| upcase_binary().to_path_buf()),
        tuned_c: Some(tuned.clone()),
        epoll_c: Some(epoll.clone()),
        python: None,
    }
}

/// Both C servers.
pub const C_SERVERS: [Peer; 2] = [Peer::CTuned, Peer::CEpoll];

/// Held by each test that runs the harness or counts costs: they start many servers and share
/// the harness's build directory.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}
