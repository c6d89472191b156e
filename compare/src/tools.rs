//! The programs a run needs: found on PATH, installed with apt-get when missing, and built
//! (upcase's release binary, the C servers of `compare/peers/`).
//!
//! Every program run from here is bounded in time: a tool that hangs fails the run with a
//! message instead of hanging it. Never starts a server: that is [`crate::peers`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The repository: the parent of this crate's directory.
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where runs keep their files: built C servers, logs, each run's figures.
pub fn work_dir(root: &Path) -> PathBuf {
    root.join("target/compare")
}

/// A program and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The command looked for on PATH.
    pub program: &'static str,
    /// What `apt-get install` needs for it.
    pub packages: &'static [&'static str],
}

/// gcc, for the C servers.
pub const GCC: Tool = Tool { program: "gcc", packages: &["gcc", "libc6-dev"] };
/// socat, a peer (with tr).
pub const SOCAT: Tool = Tool { program: "socat", packages: &["socat"] };
/// iperf3, the ceiling of a stream.
pub const IPERF3: Tool = Tool { program: "iperf3", packages: &["iperf3"] };
/// python3, for the lecture's servers.
pub const PYTHON3: Tool = Tool { program: "python3", packages: &["python3"] };
/// stdbuf, so that socat's tr answers as data comes.
pub const STDBUF: Tool = Tool { program: "stdbuf", packages: &["coreutils"] };
/// perf, for the costs per request.
pub const PERF: Tool = Tool { program: "perf", packages: &["linux-perf"] };

/// The full path of `program` on PATH, if it is there.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        candidate.metadata().is_ok_and(|m| {
            m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
        })
    })
}

/// Makes sure every tool is on PATH: installs the missing ones with apt-get, or fails if
/// `install` is false.
pub fn ensure(tools: &[Tool], install: bool) -> anyhow::Result<()> {
    let missing: Vec<Tool> = tools.iter().copied().filter(|tool| find(tool.program).is_none()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().flat_map(|tool| tool.packages.iter().copied()).collect();
    packages.dedup();
    let programs: Vec<&str> = missing.iter().map(|tool| tool.program).collect();
    if !install {
        bail!("missing {} (and --no-install): install {}", programs.join(", "), packages.join(" "));
    }
    println!("==> installing {}", packages.join(" "));
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut command = Command::new("apt-get");
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let out = run_bounded(command, Duration::from_secs(900))?;
        if !out.status.success() {
            bail!("apt-get {} failed ({}): {}", args.join(" "), out.status, last_line(&out.stderr));
        }
        Ok(())
    };
    apt(&["update", "-qq"]).context("run as root, or install the tools yourself and pass --no-install")?;
    let mut install_args = vec!["install", "-y", "-qq"];
    install_args.extend(&packages);
    apt(&install_args)?;
    if let Some(still) = missing.iter().find(|tool| find(tool.program).is_none()) {
        bail!("{} is still not on PATH after installing {}", still.program, still.packages.join(" "));
    }
    Ok(())
}

/// Builds upcase's release binary (`cargo build --release --bin upcase`); returns its path.
pub fn build_upcase(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["build", "--release", "--quiet", "--bin", "upcase"]);
    let out = run_bounded(command, Duration::from_secs(1800))?;
    if !out.status.success() {
        bail!(
            "cargo build --release --bin upcase failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(root.join("target/release/upcase"))
}

/// Compiles a C server of `compare/peers/` with every warning an error, as the tests do.
pub fn build_c(source: &Path, binary: &Path) -> anyhow::Result<()> {
    if let Some(dir) = binary.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut gcc = Command::new("gcc");
    gcc.args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"]).arg(binary).arg(source);
    let out = run_bounded(gcc, Duration::from_secs(120))?;
    if !out.status.success() {
        bail!("gcc -O2 -Werror {} failed:\n{}", source.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The real Python interpreter, not a version manager's shim: its process is the one measured.
pub fn python() -> anyhow::Result<PathBuf> {
    let mut command = Command::new("python3");
    command.args(["-c", "import sys; print(sys.executable)"]);
    let out = run_bounded(command, Duration::from_secs(30))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || path.is_empty() {
        bail!("python3 did not say where it is ({}): {}", out.status, last_line(&out.stderr));
    }
    Ok(PathBuf::from(path))
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// Runs `command` to its end, killing it if it takes longer than `limit`.
pub fn run_bounded(mut command: Command, limit: Duration) -> anyhow::Result<Output> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    // Drained on their own threads, so a chatty program never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().with_context(|| format!("cannot wait for {shown}"))? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown} did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// The last non-empty line of a program's output, for a message.
pub fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("no output").trim().to_owned()
}
