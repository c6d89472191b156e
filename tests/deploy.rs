//! The deployment files run the real binary as they say: the arguments of `Containerfile`'s CMD
//! and of the Kubernetes Deployment are flags `upcase` accepts and serve (on loopback here, in
//! place of 0.0.0.0), the probes' path answers 200 on the admin port they name, and the
//! container's health check command passes against a running server.
//!
//! (No container runtime or cluster runs here: this checks what can be checked without one.)

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::path::Path;

use support::admin::{get, start_admin_server};
use support::{run, upcase, PATIENCE};

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The JSON array that follows `prefix` on the last line that starts with it (`CMD [...]`: the
/// health check's CMD comes before the image's own).
fn json_array(text: &str, prefix: &str) -> Vec<String> {
    let line =
        text.lines().map(str::trim).rfind(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}"));
    serde_json::from_str(line[prefix.len()..].trim()).unwrap_or_else(|e| panic!("{prefix}: {e}"))
}

/// Runs `upcase ARGS` with every 0.0.0.0 address moved to a free loopback port, and checks it
/// serves TCP, UDP and the admin endpoint, whose /health answers 200.
fn serves(what: &str, args: &[String]) -> support::admin::AdminServer {
    let local: Vec<String> = args
        .iter()
        .map(|a| if a.starts_with("0.0.0.0:") { "127.0.0.1:0".to_owned() } else { a.clone() })
        .collect();
    assert!(local != args, "{what}: no 0.0.0.0 address to move to loopback");
    let mut command = upcase();
    command.args(&local);
    let server = start_admin_server(command);
    assert_eq!(get(server.admin, "/health").status, 200, "{what}");
    server
}

/// Must hold: the Containerfile's CMD starts a server with the admin endpoint, its HEALTHCHECK
/// command passes against it, and it listens on the ports the image exposes.
#[test]
fn the_containerfile_command_and_health_check_work() {
    let containerfile = read("Containerfile");
    let cmd = json_array(&containerfile, "CMD");
    assert!(cmd.contains(&"0.0.0.0:12000".to_owned()) && cmd.contains(&"0.0.0.0:9090".to_owned()), "{cmd:?}");
    assert!(containerfile.contains("EXPOSE 12000/tcp 12000/udp 9090/tcp"));
    assert!(containerfile.contains("USER 65532:65532"), "not root");
    let server = serves("Containerfile CMD", &cmd);

    let check =
        containerfile.lines().find_map(|l| l.trim().strip_prefix("CMD [\"/upcase\", \"send\"")).unwrap();
    let check: Vec<String> = serde_json::from_str(&format!("[\"send\"{check}")).unwrap();
    assert!(check.contains(&"127.0.0.1:12000".to_owned()), "{check:?}");
    let mut command = upcase();
    command
        .args(check.iter().map(|a| if a == "127.0.0.1:12000" { server.tcp.to_string() } else { a.clone() }));
    let output = run("the container's health check", command, b"", PATIENCE);
    output.assert_success("the container's health check");
    assert_eq!(output.text().trim(), "HEALTH");
}

/// Must hold: the Deployment's arguments serve; its probes ask /health on the port named admin,
/// which is the port --admin is given; the container and the Service carry TCP and UDP on one
/// port, the one --listen is given.
#[test]
fn the_kubernetes_manifest_matches_the_binary() {
    let manifest = read("deploy/kubernetes/upcase.yaml");
    let args = json_array(&manifest, "args:");
    let _server = serves("Deployment args", &args);
    let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
    assert_eq!(after("--listen"), "0.0.0.0:12000");
    assert_eq!(after("--admin"), "0.0.0.0:9090");
    assert!(manifest.contains("name: admin\n              containerPort: 9090"), "the admin port's name");
    assert_eq!(
        manifest.matches("path: /health\n              port: admin").count(),
        2,
        "readiness and liveness"
    );
    for protocol in ["TCP", "UDP"] {
        let container = format!("containerPort: 12000\n              protocol: {protocol}");
        assert!(manifest.contains(&container), "the container's {protocol} port");
        let service = format!(
            "port: 12000\n      targetPort: upcase-{}\n      protocol: {protocol}",
            protocol.to_lowercase()
        );
        assert!(manifest.contains(&service), "the Service's {protocol} port");
    }
}
