//! The card in every format a grader reads: Gradescope's results.json and JUnit XML parsed back
//! (serde_json, roxmltree) and checked against the card; a rubric file's points; an unreachable
//! server's card in every format. Every check is bounded (a 500 ms timeout, a 40 s bound on the
//! child).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::card::{check, check_output};
use support::{run, serve_python, serve_upcase, upcase, Output};

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A port of 127.0.0.1 nothing listens on (very likely: bound and dropped).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn gradescope(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", output.text()))
}

/// Every test of a Gradescope result has exactly the fields Gradescope reads, of the right types.
fn assert_gradescope_shape(results: &serde_json::Value) {
    assert!(results["score"].is_f64(), "{results:#}");
    assert!(results["output"].is_string(), "{results:#}");
    for test in results["tests"].as_array().unwrap() {
        let keys: Vec<&str> = test.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5, "{test:#}");
        assert!(test["name"].is_string() && test["output"].is_string(), "{test:#}");
        assert!(test["score"].is_f64() && test["max_score"].is_f64(), "{test:#}");
        assert!(["passed", "failed"].contains(&test["status"].as_str().unwrap()), "{test:#}");
    }
}

#[test]
fn gradescope_results_give_a_test_per_criterion_that_adds_up_to_the_score() {
    let (_server, port) = serve_python("faulty/udp_last_byte.py");
    let output = check_output("--udp", local(port), &["--format", "gradescope"]);
    assert_eq!(output.status.code(), Some(1));
    let results = gradescope(&output);
    assert_gradescope_shape(&results);
    let tests = results["tests"].as_array().unwrap();
    let names: Vec<&str> = tests.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "answers the lecture's client",
            "reads the whole message",
            "full Unicode",
            "survives bad input",
            "serves many clients"
        ]
    );
    let sum: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
    let max: f64 = tests.iter().map(|t| t["max_score"].as_f64().unwrap()).sum();
    // "serves many clients" times a crowd against a Python server: on a loaded machine its rows
    // may warn, which earns the criterion the rubric's warned share, not a failure.
    let crowd = &tests[4];
    let crowd_lost = crowd["max_score"].as_f64().unwrap() - crowd["score"].as_f64().unwrap();
    let crowd_said = crowd["output"].as_str().unwrap();
    assert!(crowd_lost == 0.0 || crowd_said.lines().all(|l| !l.starts_with("fail")), "{crowd:#}");
    assert_eq!((results["score"].as_f64(), sum, max), (Some(70.0 - crowd_lost), 70.0 - crowd_lost, 100.0));
    let lecture = &tests[0];
    assert_eq!((lecture["status"].as_str(), lecture["score"].as_f64()), (Some("failed"), Some(0.0)));
    let said = lecture["output"].as_str().unwrap();
    assert!(
        said.starts_with("fail  lecture client: the last byte was not uppercased: got \"HELLO, WORLd\""),
        "{said}"
    );
    assert!(said.contains("-> Uppercase every byte received"), "{said}");
    assert!(tests[1..4].iter().all(|t| t["status"] == "passed"), "{results:#}");
    let verdict = results["output"].as_str().unwrap();
    let counted = |what: &str| -> u32 {
        let before = verdict.split(&format!(" {what}")).next().unwrap();
        before.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("no {what} count in {verdict}"))
    };
    assert!(verdict.contains("FAIL: ") && counted("failed,") == 9, "{results:#}");
    assert_eq!(counted("passed,") + counted("warned,"), 5, "{results:#}");
    assert!(crowd_lost == 0.0 || counted("warned,") > 0, "{results:#}");
}

/// A JUnit test case as read back: name, classname, kind (`success`, `failure`, `skipped`) and
/// the failure's or skip's message.
type Case = (String, String, String, String);

/// Parses JUnit XML and returns each test case, with the suite's properties.
fn junit(xml: &str) -> (Vec<Case>, Vec<(String, String)>) {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not XML ({e}): {xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1, "{xml}");
    let suite = suites[0];
    let properties = suite
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .map(|n| (n.attribute("name").unwrap().to_owned(), n.attribute("value").unwrap().to_owned()))
        .collect();
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let outcome = case.children().find(|n| n.has_tag_name("failure") || n.has_tag_name("skipped"));
            let (kind, message) = match outcome {
                Some(n) => (n.tag_name().name().to_owned(), n.attribute("message").unwrap_or("").to_owned()),
                None => ("success".to_owned(), String::new()),
            };
            let name = case.attribute("name").unwrap().to_owned();
            (name, case.attribute("classname").unwrap().to_owned(), kind, message)
        })
        .collect();
    assert_eq!(suite.attribute("tests").map(str::parse::<usize>), Some(Ok(cases.len())), "{xml}");
    (cases, properties)
}

#[test]
fn junit_has_a_failure_with_the_evidence_and_a_skip_for_every_row_not_run() {
    let (_server, port) = serve_python("faulty/tcp_accept_once.py");
    let output = check_output("--tcp", local(port), &["--format", "junit"]);
    assert_eq!(output.status.code(), Some(1));
    let (cases, properties) = junit(&output.text());
    assert_eq!(cases.len(), 19);
    let (name, classname, kind, message) = &cases[0];
    assert_eq!(
        (name.as_str(), classname.as_str(), kind.as_str()),
        ("lecture client", "upcase.check.lecture_client", "failure")
    );
    assert!(message.contains("read once: \"HELLO, WORLD\"; then the server stopped answering"), "{message}");
    for (name, _, kind, message) in &cases[1..] {
        assert_eq!(kind, "skipped", "{name}");
        assert_eq!(message, "not run: the server stopped answering after \"lecture client\"");
    }
    let property = |key: &str| properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(
        (property("verdict"), property("score"), property("max_score")),
        (Some("FAIL"), Some("0"), Some("100"))
    );
}

#[test]
fn junit_reports_warnings_as_passing_test_cases_with_their_advice() {
    let (_server, port) = serve_python("faulty/tcp_never_closes.py");
    let output = check_output("--tcp", local(port), &["--format", "junit"]);
    assert_eq!(output.status.code(), Some(0));
    let xml = output.text();
    let (cases, _) = junit(&xml);
    assert!(cases.iter().all(|(_, _, kind, _)| kind == "success"), "{xml}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let half_close = doc.descendants().find(|n| n.attribute("name") == Some("half-close")).unwrap();
    let out = half_close.children().find(|n| n.has_tag_name("system-out")).and_then(|n| n.text()).unwrap();
    assert!(
        out.starts_with("warn: the whole reply came back, but the connection stayed open 500ms"),
        "{out}"
    );
    assert!(out.contains("Advice: When recv returns 0, finish the reply and close"), "{out}");
}

#[test]
fn an_unreachable_server_gets_a_card_in_every_format_and_exits_2() {
    let addr = free_port();
    for format in ["text", "json", "gradescope", "junit"] {
        let output = check_output("--tcp", addr, &["--format", format]);
        assert_eq!(output.status.code(), Some(2), "{format}");
        assert_eq!(output.stderr.trim().lines().count(), 1, "{format}: {}", output.stderr);
        let text = output.text();
        match format {
            "text" => {
                assert!(text.contains("\nCANNOT_RUN: 0 passed, 0 warned, 1 failed, 18 skipped"), "{text}")
            }
            "json" => {
                let card: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(card["verdict"], "CANNOT_RUN");
                assert!(card["problem"].as_str().unwrap().contains("connection refused"), "{card:#}");
                assert_eq!(
                    card["counts"],
                    serde_json::json!({"pass": 0, "warn": 0, "fail": 1, "skip": 18, "info": 0})
                );
                assert_eq!((card["score"].as_f64(), card["max_score"].as_f64()), (Some(0.0), Some(100.0)));
            }
            "gradescope" => {
                let results = gradescope(&output);
                assert_gradescope_shape(&results);
                assert_eq!(results["score"], 0.0);
                assert!(results["tests"].as_array().unwrap().iter().all(|t| t["status"] == "failed"));
            }
            _ => {
                let (cases, properties) = junit(&text);
                let failures = cases.iter().filter(|(_, _, kind, _)| kind == "failure").count();
                let skipped = cases.iter().filter(|(_, _, kind, _)| kind == "skipped").count();
                assert_eq!((failures, skipped), (1, 18));
                assert!(properties.contains(&("verdict".to_owned(), "CANNOT_RUN".to_owned())));
            }
        }
    }
    let udp = check("--udp", addr, &[]);
    assert_eq!(udp.json["verdict"], "CANNOT_RUN");
    udp.shows("lecture client", "port unreachable");
    assert_eq!(udp.code, 2);
}

#[test]
fn a_target_that_does_not_resolve_gets_a_card_without_an_address() {
    let mut command = upcase();
    command.args(["check", "--to", "no-port-given", "--format", "json"]);
    let output = run("upcase check", command, b"", Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(2));
    let card: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((card["verdict"].as_str(), card["addr"].is_null()), (Some("CANNOT_RUN"), true));
    assert!(card["problem"].as_str().unwrap().starts_with("cannot resolve \"no-port-given\""), "{card:#}");
}

#[test]
fn a_rubric_file_sets_the_points_and_a_bad_one_stops_the_check() {
    let (_server, port) = serve_python("faulty/udp_last_byte.py");
    let dir = std::env::temp_dir().join(format!("upcase-rubric-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rubric = dir.join("rubric.toml");
    std::fs::write(&rubric, "[points]\nlecture_client = 10\nwhole_message = 40\n").unwrap();
    let card = check("--udp", local(port), &["--rubric", rubric.to_str().unwrap()]);
    assert_eq!((card.json["score"].as_f64(), card.json["max_score"].as_f64()), (Some(90.0), Some(100.0)));
    assert_eq!(card.points("whole_message"), 40.0);
    std::fs::write(&rubric, "[points]\nspeed = 10\n").unwrap();
    let output = check_output("--udp", local(port), &["--rubric", rubric.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stderr.contains("bad rubric") && output.stderr.contains("speed"), "{}", output.stderr);
    assert!(output.stderr.contains("lecture_client, whole_message, unicode"), "{}", output.stderr);
    assert!(output.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_is_an_alias_of_format_json_and_upcase_serve_scores_full_marks_in_text() {
    let server = serve_upcase(&["--tcp"]);
    let card = check("--tcp", server.tcp(), &["--budget", "30s"]);
    let mut alias = upcase();
    alias.args(["check", "--tcp", "--to", &server.tcp().to_string(), "--timeout", "500ms", "--json"]);
    let alias: serde_json::Value =
        serde_json::from_slice(&run("--json", alias, b"", support::card::CHECK_PATIENCE).stdout).unwrap();
    let keys = |value: &serde_json::Value| value.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&alias), keys(&card.json));
    let text = check_output("--tcp", server.tcp(), &[]).text();
    assert!(text.contains("  answers the lecture's client  30 / 30  pass\n"), "{text}");
    assert!(text.contains("  closes cleanly                10 / 10  pass\n"), "{text}");
    assert!(text.contains("After every probe, a round trip (\"hello, world\", then a half-close"), "{text}");
    let conflict = check_output("--tcp", server.tcp(), &["--json", "--format", "text"]);
    assert_eq!(conflict.status.code(), Some(2), "{}", conflict.stderr);
}
