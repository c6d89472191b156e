//! `upcase grade CLASS.toml`: a small class from `tests/peers/class/` (a correct server, one that
//! uppercases ASCII only, a UDP one that leaves the last byte lowercase, one that never answers,
//! and a client), graded one at a time and two at a time. The grades (grades.csv), Gradescope's
//! results.json per submission and the class's junit.xml are read back and checked; a bad class
//! file exits 2 naming its line.
//!
//! Loopback only: each submission on a port of its own, so the class can be graded on this
//! machine's loopback too where network namespaces are not allowed. Each run is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::submissions::{free_port, Submission};
use support::{run, upcase, Output};

/// The longest a class of five may take here: each is bounded by its budget (30 s), and they
/// take a few seconds each.
const GRADE_PATIENCE: Duration = Duration::from_secs(180);

/// A fresh folder for one test's class and grades.
fn folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("grade-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the class file into `dir`: `None` when a program of it cannot be built here.
fn class_file(dir: &Path) -> Option<PathBuf> {
    let server = |file: &'static str| -> Option<(String, u16)> {
        let port = free_port();
        Some((Submission::get(file)?.command(port), port))
    };
    let (ada, ada_port) = server("correct_server.py")?;
    let (ben, ben_port) = server("tcp_toupper.c")?;
    let (dev, dev_port) = server("udp_last_byte.c")?;
    let (finn, finn_port) = server("tcp_client_reads_all.py")?;
    let eve_port = free_port();
    std::fs::create_dir_all(dir.join("ben's folder")).unwrap();
    let text = format!(
        r#"# A class of five, as a teacher writes it.
[[submission]]
name = "ada"
server = "{ada}"
transport = "tcp"
to = "127.0.0.1:{ada_port}"
timeout = "500ms"

[[submission]]
name = "Ben Okafor"
server = "{ben}"
transport = "tcp"
to = "127.0.0.1:{ben_port}"
dir = "ben's folder"
timeout = "500ms"

[[submission]]
name = "dev"
server = "{dev}"
transport = "udp"
to = "127.0.0.1:{dev_port}"
timeout = "500ms"

[[submission]]
name = "eve"
server = "sleep 30"
transport = "tcp"
to = "127.0.0.1:{eve_port}"
budget = "2s"

[[submission]]
name = "finn"
client = "{finn}"
transport = "tcp"
to = "127.0.0.1:{finn_port}"
"#
    );
    let path = dir.join("class.toml");
    std::fs::write(&path, text).unwrap();
    Some(path)
}

fn grade(class: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut command = upcase();
    command.arg("grade").arg(class).arg("--out").arg(out).args(extra);
    run("upcase grade", command, b"", GRADE_PATIENCE)
}

/// grades.csv as rows of cells, the header first.
fn csv_rows(out: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_path(out.join("grades.csv")).unwrap();
    reader.records().map(|record| record.unwrap().iter().map(str::to_owned).collect()).collect()
}

/// The columns of grades.csv.
const HEADER: [&str; 16] = [
    "name",
    "score",
    "max",
    "verdict",
    "lecture_client",
    "whole_message",
    "unicode",
    "bad_input",
    "many_clients",
    "clean_close",
    "runs_cleanly",
    "prints_the_reply",
    "waits_for_late_replies",
    "reads_the_whole_reply",
    "handles_bad_bytes",
    "fails_clearly",
];

/// Asserts each column named holds one of the values given (the crowd's and port 7's rows depend
/// on the machine's load and on other tests, so a few columns allow two).
fn cells_are(row: &[String], expected: &[(&str, &[&str])]) {
    for (column, allowed) in expected {
        let at = HEADER.iter().position(|name| name == column).unwrap();
        assert!(allowed.contains(&row[at].as_str()), "{column} of {row:?}: not one of {allowed:?}");
    }
}

/// Checks every file and the summary of a graded class.
fn assert_graded(output: &Output, out: &Path) {
    assert_eq!(output.status.code(), Some(1), "some could not be graded; stderr:\n{}", output.stderr);
    let rows = csv_rows(out);
    assert_eq!(rows[0], HEADER);
    let names: Vec<&str> = rows[1..].iter().map(|row| row[0].as_str()).collect();
    assert_eq!(names, ["ada", "Ben Okafor", "dev", "eve", "finn"]);
    let (ada, ben, dev, eve, finn) = (&rows[1], &rows[2], &rows[3], &rows[4], &rows[5]);
    let full: &[(&str, &[&str])] = &[
        ("lecture_client", &["30"]),
        ("whole_message", &["15"]),
        ("bad_input", &["15"]),
        ("clean_close", &["10"]),
    ];
    cells_are(ada, full);
    cells_are(ada, &[("verdict", &["PASS", "PASS_WITH_WARNINGS"]), ("unicode", &["15"])]);
    cells_are(ben, full);
    cells_are(ben, &[("verdict", &["PASS_WITH_WARNINGS"]), ("unicode", &["7.5"])]);
    cells_are(
        dev,
        &[
            ("verdict", &["FAIL"]),
            ("lecture_client", &["0"]),
            ("whole_message", &["0"]),
            ("unicode", &["7.5"]),
            ("bad_input", &["10", "20"]),
            ("clean_close", &[""]),
        ],
    );
    for row in [ada, ben, dev] {
        cells_are(row, &[("max", &["110"]), ("many_clients", &["7.5", "15"]), ("runs_cleanly", &["10"])]);
        let sum: f64 = row[4..].iter().filter(|c| !c.is_empty()).map(|c| c.parse::<f64>().unwrap()).sum();
        assert_eq!(row[1].parse::<f64>().unwrap(), sum, "the score is its criteria's: {row:?}");
    }
    cells_are(
        eve,
        &[("score", &["0"]), ("max", &["110"]), ("verdict", &["CANNOT_RUN"]), ("runs_cleanly", &["0"])],
    );
    // A client that reads the whole reply and fails clearly without a server: full marks, on its
    // own criteria (a server's are empty for it, as a client's are for the servers).
    cells_are(
        finn,
        &[
            ("score", &["100"]),
            ("max", &["100"]),
            ("verdict", &["PASS"]),
            ("runs_cleanly", &[""]),
            ("lecture_client", &[""]),
            ("prints_the_reply", &["35"]),
            ("reads_the_whole_reply", &["25"]),
            ("fails_clearly", &["15"]),
        ],
    );
    for row in [ada, ben, dev, eve] {
        cells_are(row, &[("prints_the_reply", &[""]), ("fails_clearly", &[""])]);
    }

    // Gradescope's results, one per submission, in the folder of its file name.
    for (row, folder) in rows[1..].iter().zip(["ada", "Ben_Okafor", "dev", "eve", "finn"]) {
        let text = std::fs::read_to_string(out.join(folder).join("results.json")).unwrap();
        let results: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(results["score"].as_f64(), Some(row[1].parse().unwrap()), "{folder}");
        let tests = results["tests"].as_array().unwrap();
        let sum: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
        let max: f64 = tests.iter().map(|t| t["max_score"].as_f64().unwrap()).sum();
        assert_eq!((sum, max.to_string()), (row[1].parse().unwrap(), row[2].clone()), "{folder}");
        let card = std::fs::read_to_string(out.join(folder).join("card.txt")).unwrap();
        assert!(card.starts_with(&format!("{}: ", row[0])), "{card}");
    }
    let ada_tests = std::fs::read_to_string(out.join("ada/results.json")).unwrap();
    assert!(ada_tests.contains("\"name\": \"runs cleanly\""), "{ada_tests}");
    let eve_results = std::fs::read_to_string(out.join("eve/results.json")).unwrap();
    assert!(eve_results.contains("`sleep 30` did not start answering within 2s"), "{eve_results}");
    let ben_card = std::fs::read_to_string(out.join("Ben_Okafor/card.txt")).unwrap();
    assert!(ben_card.contains("ben's folder"), "run in its own folder: {ben_card}");

    // JUnit: a suite per submission, its verdict and score as properties, failures as rows.
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let document = roxmltree::Document::parse(&xml).unwrap();
    let suites: Vec<_> = document.descendants().filter(|n| n.has_tag_name("testsuite")).collect();
    let suite_names: Vec<&str> = suites.iter().map(|s| s.attribute("name").unwrap()).collect();
    assert_eq!(suite_names, names);
    for (suite, row) in suites.iter().zip(&rows[1..]) {
        let property = |name: &str| {
            suite
                .descendants()
                .find(|p| p.has_tag_name("property") && p.attribute("name") == Some(name))
                .and_then(|p| p.attribute("value"))
        };
        assert_eq!(
            (property("verdict"), property("score"), property("max_score")),
            (Some(row[3].as_str()), Some(row[1].as_str()), Some(row[2].as_str()))
        );
    }
    let failure = |suite: usize, case: &str| {
        let case = suites[suite]
            .children()
            .find(|c| c.has_tag_name("testcase") && c.attribute("name") == Some(case))
            .unwrap();
        case.children()
            .find(|f| f.has_tag_name("failure"))
            .and_then(|f| f.attribute("message"))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(failure(3, "lecture client").contains("did not start answering within 2s"));
    assert_eq!(failure(4, "normal reply"), "", "the client printed its reply");
    assert!(failure(2, "lecture client").contains("the last byte was not uppercased"));

    // The summary: a line per submission.
    let summary = output.text();
    let lines: Vec<&str> = summary.lines().collect();
    assert!(lines[0].starts_with("name ") && lines[0].ends_with("lost points on"), "{summary}");
    assert!(
        lines[3].starts_with("dev ")
            && lines[3].contains("FAIL")
            && lines[3].contains("lecture_client, whole_message, unicode"),
        "{summary}"
    );
    assert!(
        lines[4].contains("CANNOT_RUN")
            && lines[4].contains("0 / 110  `sleep 30` did not start answering within 2s"),
        "{summary}"
    );
    assert!(
        lines[5].starts_with("finn ") && lines[5].contains("PASS") && lines[5].contains("100 / 100"),
        "{summary}"
    );
    assert!(summary.contains("5 submissions graded in "), "{summary}");
}

#[test]
fn a_class_graded_one_at_a_time() {
    let dir = folder("sequential");
    let Some(class) = class_file(&dir) else { return };
    let out = dir.join("grades");
    let output = grade(&class, &out, &[]);
    assert_graded(&output, &out);
    // Progress in a pipe: a line as each starts and ends, in order.
    let progress: Vec<&str> =
        output.stderr.lines().filter(|l| l.starts_with("grading") || l.starts_with("graded")).collect();
    assert_eq!(progress.len(), 10, "{}", output.stderr);
    assert_eq!(progress[0], "grading ada (1 of 5)");
    assert!(
        progress[1].starts_with("graded ada: PASS") && progress[1].ends_with("(4 left)"),
        "{}",
        progress[1]
    );
    assert!(
        progress[9].starts_with("graded finn: PASS, 100 of 100") && progress[9].ends_with("(0 left)"),
        "{}",
        progress[9]
    );
}

#[test]
fn a_class_graded_two_at_a_time() {
    let dir = folder("jobs");
    let Some(class) = class_file(&dir) else { return };
    let out = dir.join("grades");
    let output = grade(&class, &out, &["--jobs", "2"]);
    assert_graded(&output, &out);
    match upcase::check::netns::available() {
        Ok(()) => assert!(
            output.text().contains("(2 at a time, each in a network namespace of its own)"),
            "{}",
            output.text()
        ),
        Err(why) => {
            assert!(
                output.stderr.contains("--jobs 2 needs a network namespace per submission"),
                "{}",
                output.stderr
            );
            assert!(output.stderr.contains(&why.to_string()), "{}", output.stderr);
        }
    }
}

#[test]
fn a_bad_class_file_exits_2_naming_its_line() {
    let dir = folder("bad");
    let out = dir.join("grades");
    let cases = [
        ("[[submission]]\nname = \"a\"\nserver = \"s\"\ntransport = \"tcp\"\nsever = \"x\"\n", "line 5: unknown field `sever`"),
        ("[[submission]]\nname = \"a/b\"\nserver = \"s\"\ntransport = \"tcp\"\n\n[[submission]]\nname = \"a b\"\nclient = \"c\"\ntransport = \"udp\"\n", "line 7: name \"a b\" gives the same file name (a_b) as \"a/b\" on line 1"),
        ("[[submission]]\nname = \"a\"\nserver = \"s\"\ntransport = \"tcp\"\ntimeout = \"fast\"\n", "line 5: \"fast\": "),
    ];
    for (text, says) in cases {
        let class = dir.join("class.toml");
        std::fs::write(&class, text).unwrap();
        let output = grade(&class, &out, &[]);
        assert_eq!(output.status.code(), Some(2), "{}", output.stderr);
        let expected = format!("upcase: error: bad class file {}, {says}", class.display());
        assert!(output.stderr.starts_with(&expected), "{:?} should start with {expected:?}", output.stderr);
        assert!(!out.exists(), "nothing graded, nothing written");
    }
    let missing = grade(&dir.join("nowhere.toml"), &out, &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(missing.stderr.contains("cannot read the class file"), "{}", missing.stderr);
}
