//! The rubric's grading and files, tested on rows and text.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::check::card::{Row, Status};
use crate::net::Transport;

fn row(name: &str, status: Status) -> Row {
    Row::new(name, status, "", "")
}

#[test]
fn one_flaw_costs_once() {
    let rows = [
        row("lecture client", Status::Pass),
        row("size 1,025", Status::Fail),
        row("size 2,049", Status::Fail),
        row("size 10,000", Status::Fail),
        row("unicode", Status::Warn),
        row("invalid utf-8", Status::Skip),
        row("empty connection", Status::Skip),
        row("many clients", Status::Pass),
        row("latency", Status::Info),
        row("half-close", Status::Pass),
    ];
    let grades = grade(&rows, &Rubric::default_for(Transport::Tcp));
    let got: Vec<(&str, Outcome, f64)> =
        grades.iter().map(|g| (g.criterion.id(), g.outcome, g.score)).collect();
    assert_eq!(
        got,
        [
            ("lecture_client", Outcome::Pass, 30.0),
            ("whole_message", Outcome::Fail, 0.0),
            ("unicode", Outcome::Warn, 7.5),
            ("bad_input", Outcome::Untested, 0.0),
            ("many_clients", Outcome::Pass, 15.0),
            ("clean_close", Outcome::Pass, 10.0),
        ]
    );
    assert_eq!(grades.get(1).map(|g| g.rows.len()), Some(3));
}

#[test]
fn the_defaults_add_up_to_100_for_each_transport_and_10_more_when_run() {
    for transport in [Transport::Tcp, Transport::Udp] {
        let server = Rubric::default_for(transport);
        assert_eq!((server.total(false), server.total(true)), (100.0, 110.0));
        assert_eq!(Rubric::default_for_client(transport).total(false), 100.0);
        for rubric in [Rubric::default_for(transport), Rubric::default_for_client(transport)] {
            assert!(rubric.points.keys().all(|criterion| criterion.applies_to(transport)));
        }
        let server = Rubric::default_for(transport);
        assert!(server.points.keys().all(|criterion| !criterion.is_for_clients()));
        let client = Rubric::default_for_client(transport);
        assert!(client.points.keys().all(|criterion| criterion.is_for_clients()));
    }
    assert!(!Rubric::default_for(Transport::Udp).points.contains_key(&Criterion::CleanClose));
}

#[test]
fn running_cleanly_is_graded_only_on_a_card_with_its_rows() {
    let rubric = Rubric::default_for(Transport::Udp);
    let probed = [row("lecture client", Status::Pass)];
    let ids = |grades: &[Grade]| grades.iter().map(|g| g.criterion.id()).collect::<Vec<_>>();
    assert!(!ids(&grade(&probed, &rubric)).contains(&"runs_cleanly"));
    let run = [row("lecture client", Status::Pass), row("idle cpu", Status::Fail), row("stop", Status::Pass)];
    let grades = grade(&run, &rubric);
    let runs = grades.iter().find(|g| g.criterion == Criterion::RunsCleanly).map(|g| (g.outcome, g.score));
    assert_eq!(runs, Some((Outcome::Fail, 0.0)));
    assert_eq!(grades.iter().map(|g| g.max_score).sum::<f64>(), 110.0);
}

#[test]
fn one_file_serves_servers_and_clients() {
    let text = "[points]\nunicode = 20\nprints_the_reply = 50\nsurvives_loss = 5\n";
    let server = Rubric::parse_over(text, Rubric::default_for(Transport::Udp)).ok();
    let client = Rubric::parse_over(text, Rubric::default_for_client(Transport::Tcp)).ok();
    let (server, client) = (server.unwrap(), client.unwrap());
    assert_eq!(server.points.get(&Criterion::Unicode), Some(&20.0));
    assert!(!server.points.contains_key(&Criterion::PrintsTheReply));
    assert_eq!(client.points.get(&Criterion::PrintsTheReply), Some(&50.0));
    assert!(!client.points.contains_key(&Criterion::SurvivesLoss), "TCP loses nothing");
    assert!(!client.points.contains_key(&Criterion::Unicode));
}

#[test]
fn a_file_overrides_what_it_names() {
    let text = "warned = 0.25\n[points]\nlecture_client = 50\nclean_close = 0\n";
    let rubric = Rubric::parse(text, Transport::Tcp).unwrap_or_else(|_| Rubric::default_for(Transport::Tcp));
    assert_eq!(rubric.warned, 0.25);
    assert_eq!(rubric.points.get(&Criterion::LectureClient), Some(&50.0));
    assert_eq!(rubric.points.get(&Criterion::CleanClose), Some(&0.0));
    assert_eq!(rubric.points.get(&Criterion::Unicode), Some(&15.0), "kept from the default");
    assert_eq!(rubric.total(false), 110.0);
}

#[test]
fn a_bad_file_says_what_is_wrong() {
    let unknown = Rubric::parse("[points]\nspeed = 10\n", Transport::Tcp);
    assert!(matches!(&unknown, Err(Err(e)) if e.to_string().contains("speed")), "{unknown:?}");
    let negative = Rubric::parse("[points]\nunicode = -1\n", Transport::Tcp);
    assert!(matches!(&negative, Err(Ok(why)) if why.starts_with("unicode = -1")), "{negative:?}");
    let share = Rubric::parse("warned = 2\n", Transport::Tcp);
    assert!(matches!(&share, Err(Ok(why)) if why.contains("from 0 to 1")), "{share:?}");
}
