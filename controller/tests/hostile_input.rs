//! Hostile configuration and policy files: every one is an error with a message, never a panic.
//! Mutated valid configs reach the semantic check, and what it accepts keeps its promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use tobira_controller::config::{Config, DoorKindConfig};
use tobira_controller::daemon::parse_policy;

const GOOD: &str = r#"
controller = 7
data_dir = "/tmp/x"
poll_ms = 5

[central]
url = "https://central.example"
secret = "s"
public_key = "61ec3dff94d0666b7546ea2aa2b01429312fe61766cf2b97c20d76cf2161290e"

[gpio]
backend = "virtual"
socket = "/tmp/gpio.sock"
board = "generic"

[[biometric]]
module = 1
name = "m"
port = "/dev/serial0"

[[doors]]
name = "office"
id = 3
kind = "door"
entry_reader = "Reader A"
lock_output = "lock"
contact = "door_contact"
rex = { pin = 6 }
prompt = { pin = 24, active_low = true }
timings = { unlock_ms = 5000, held_prealarm_ms = 20000, held_alarm_ms = 30000 }

[[doors]]
name = "gate"
id = 4
kind = "flapper_gate"
entry_reader = "Reader B"
open_in = "gate_open_in"
open_out = "gate_open_out"
passage = "passage_sensor"

[[fire_inputs]]
zone = 2
input = "fire_alarm"
"#;

fn standalone() -> Config {
    let text = GOOD.split("[central]").next().unwrap().to_owned()
        + "[gpio]"
        + GOOD.split("[gpio]").nth(1).unwrap();
    Config::parse(&text, Path::new("c.toml")).unwrap()
}

#[test]
fn the_reference_config_is_good() {
    Config::parse(GOOD, Path::new("c.toml"))
        .unwrap()
        .check()
        .unwrap();
    standalone().check().unwrap();
}

/// One edit to a config's text, by line (indices wrap around the line count).
#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    /// Replace the value of a `key = value` line.
    Value(usize, &'static str),
    /// Replace the value of a `key = value` line with another of its type.
    SameType(usize, prop::sample::Index),
    /// Give a line the value of another line (names, pins and ids collide).
    CopyValue(usize, usize),
    /// A quoted value loses its quotes, a bare one gets them.
    SwapType(usize),
    /// Cut the text at this fraction (per mille) of its length.
    Truncate(u16),
}

/// Values of each type the config uses, legal and not: a replacement mostly
/// keeps the type, so that the text still parses and `check` has to judge it.
const NUMBERS: &[&str] = &[
    "0", "1", "2", "3", "4", "6", "7", "17", "24", "99", "1000", "5000", "20000", "30001",
];
const STRINGS: &[&str] = &[
    "\"\"",
    "\"x\"",
    "\"lock\"",
    "\"Reader A\"",
    "\"Reader B\"",
    "\"door_contact\"",
    "\"gate_open_in\"",
    "\"passage_sensor\"",
    "\"fire_alarm\"",
    "\"door\"",
    "\"flapper_gate\"",
    "\"https://c.example\"",
    "\"ftp://central\"",
    "\"zz\"",
    "\"0x01\"",
    "\"generic\"",
    "\"nope\"",
];
const TABLES: &[&str] = &[
    "{ pin = 5 }",
    "{ pin = 6 }",
    "{ pin = 24, active_low = true }",
    "{ pin = 77 }",
    "{ unlock_ms = 0 }",
    "{ unlock_ms = 10, held_prealarm_ms = 9, held_alarm_ms = 8 }",
    "{ open_timeout_ms = 0 }",
];
const OTHERS: &[&str] = &["-1", "4294967296", "true", "[]", "{}"];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<usize>().prop_map(Mutation::Drop),
        1 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        6 => (any::<usize>(), any::<prop::sample::Index>()).prop_map(|(i, pick)| Mutation::SameType(i, pick)),
        1 => (any::<usize>(), prop::sample::select(OTHERS)).prop_map(|(i, v)| Mutation::Value(i, v)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::CopyValue(a, b)),
        1 => any::<usize>().prop_map(Mutation::SwapType),
        1 => (0..1000u16).prop_map(Mutation::Truncate),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let split = |line: &str| {
        line.split_once(" = ")
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    };
    for m in mutations {
        let n = lines.len().max(1);
        match *m {
            Mutation::Drop(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) if !lines.is_empty() => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Mutation::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Mutation::Value(i, value) if !lines.is_empty() => {
                if let Some((key, _)) = split(&lines[i % n]) {
                    lines[i % n] = format!("{key} = {value}");
                }
            }
            Mutation::SameType(i, pick) if !lines.is_empty() => {
                if let Some((key, value)) = split(&lines[i % n]) {
                    let pool = match value.chars().next() {
                        Some('"') => STRINGS,
                        Some('{') => TABLES,
                        Some(c) if c.is_ascii_digit() => NUMBERS,
                        _ => OTHERS,
                    };
                    lines[i % n] = format!("{key} = {}", pick.get(pool));
                }
            }
            Mutation::CopyValue(a, b) if !lines.is_empty() => {
                // From the next line (after `b`) whose value has the same type,
                // so that names, ids, readers and pins collide.
                if let Some((key, value)) = split(&lines[a % n]) {
                    let kind = value.chars().next();
                    let other = (0..n)
                        .map(|k| (b + k) % n)
                        .filter(|&j| j != a % n)
                        .filter_map(|j| split(&lines[j]))
                        .find(|(_, v)| v.chars().next() == kind);
                    if let Some((_, value)) = other {
                        lines[a % n] = format!("{key} = {value}");
                    }
                }
            }
            Mutation::SwapType(i) if !lines.is_empty() => {
                if let Some((key, value)) = split(&lines[i % n]) {
                    let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                        Some(bare) => bare.to_owned(),
                        None => format!("{value:?}"),
                    };
                    lines[i % n] = format!("{key} = {value}");
                }
            }
            Mutation::Truncate(per_mille) => {
                let text = lines.join("\n");
                let at = text.len() * usize::from(per_mille) / 1000;
                let at = (0..=at)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                lines = text[..at].lines().map(str::to_owned).collect();
            }
            _ => {}
        }
    }
    lines.join("\n") + "\n"
}

/// What became of a mutated config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    ParseError,
    Invalid,
    Checks,
}

/// Parses and checks one text; every error must name the file and a line of
/// it, and a config that checks must keep what `check` promises.
fn parse_and_check(text: &str) -> Result<Outcome, TestCaseError> {
    let lines = text.lines().count().max(1);
    let located = |e: &dyn std::fmt::Display| -> Result<(), TestCaseError> {
        let shown = e.to_string();
        let rest = shown.strip_prefix("c.toml:");
        prop_assert!(rest.is_some(), "no file in {:?}", shown);
        let mut parts = rest.unwrap().splitn(2, ':');
        let line: usize = parts.next().unwrap().parse().unwrap_or(0);
        prop_assert!(
            (1..=lines + 1).contains(&line),
            "line {} of {} in {:?}",
            line,
            lines,
            shown
        );
        let message = parts
            .next()
            .unwrap_or("")
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == ':');
        prop_assert!(message.trim().len() > 5, "no message in {:?}", shown);
        Ok(())
    };
    let config = match Config::parse(text, Path::new("c.toml")) {
        Ok(c) => c,
        Err(e) => {
            located(&e)?;
            return Ok(Outcome::ParseError);
        }
    };
    match config.check() {
        Err(e) => {
            located(&e)?;
            Ok(Outcome::Invalid)
        }
        Ok(()) => {
            keeps_its_promises(&config)?;
            Ok(Outcome::Checks)
        }
    }
}

/// What `Config::check` promises of a config it accepts: ids and names
/// unique, each door has the pins its kind needs (and none of the other
/// kind's), no pin used twice, timings and central settings in range.
fn keeps_its_promises(c: &Config) -> Result<(), TestCaseError> {
    let profile = c.profile();
    prop_assert!(profile.is_ok(), "{:?}", profile.err());
    let profile = profile.unwrap();
    let mut pins = BTreeSet::new();
    let mut claim =
        |pin: &tobira_controller::config::PinRef, output: bool| -> Result<(), TestCaseError> {
            let resolved = c.resolve(profile.as_ref(), pin, output);
            prop_assert!(resolved.is_ok(), "{:?}", resolved.err());
            let pin = resolved.unwrap().pin;
            prop_assert!(pins.insert(pin), "BCM pin {} used twice", pin);
            Ok(())
        };
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    let mut readers = BTreeSet::new();
    for door in &c.doors {
        prop_assert!(
            names.insert(door.name.clone()),
            "door name {:?} twice",
            door.name
        );
        prop_assert!(ids.insert(door.id), "door id {} twice", door.id);
        for reader in door.entry_reader.iter().chain(&door.exit_reader) {
            prop_assert!(readers.insert(reader.clone()), "reader {:?} twice", reader);
        }
        prop_assert!(
            door.entry_reader.is_some() || door.exit_reader.is_some() || door.rex.is_some()
        );
        let (required, optional, foreign) = match door.kind {
            DoorKindConfig::Door => {
                let t = door.timings;
                prop_assert!(t.unlock_ms > 0 && t.held_prealarm_ms <= t.held_alarm_ms);
                (
                    vec![(&door.lock_output, true), (&door.contact, false)],
                    vec![(&door.rex, false)],
                    [&door.open_in, &door.open_out, &door.passage],
                )
            }
            DoorKindConfig::FlapperGate => {
                prop_assert!(door.gate_timings.open_timeout_ms > 0);
                (
                    vec![
                        (&door.open_in, true),
                        (&door.open_out, true),
                        (&door.passage, false),
                    ],
                    vec![],
                    [&door.lock_output, &door.contact, &door.rex],
                )
            }
        };
        for (pin, output) in required {
            prop_assert!(
                pin.is_some(),
                "door {:?} lacks a pin its kind needs",
                door.name
            );
            claim(pin.as_ref().unwrap(), output)?;
        }
        for (pin, output) in optional {
            if let Some(pin) = pin {
                claim(pin, output)?;
            }
        }
        prop_assert!(
            foreign.iter().all(|p| p.is_none()),
            "door {:?} has the other kind's pins",
            door.name
        );
        if let Some(prompt) = &door.prompt {
            claim(prompt, true)?;
        }
    }
    for fire in &c.fire_inputs {
        claim(&fire.input, false)?;
    }
    for tamper in &c.tamper_inputs {
        claim(&tamper.input, false)?;
    }
    let modules: BTreeSet<u32> = c.biometric.iter().map(|m| m.module).collect();
    prop_assert_eq!(modules.len(), c.biometric.len());
    prop_assert!(c.biometric.iter().all(|m| m.address().is_ok()));
    if let Some(central) = &c.central {
        prop_assert!(central.url.starts_with("http://") || central.url.starts_with("https://"));
        prop_assert!(!central.is_insecure_http() || central.allow_insecure_http);
        prop_assert!(central.secret.as_deref().is_some_and(|s| !s.is_empty()));
        prop_assert!(tobira_protocol::PolicyKey::from_hex(&central.public_key).is_ok());
        prop_assert!((1_000..=30_000).contains(&central.watch_ms));
        prop_assert!(
            central.backoff_min_ms >= 10 && central.backoff_max_ms >= central.backoff_min_ms
        );
        prop_assert!((1..=tobira_protocol::MAX_BATCH).contains(&central.batch));
    }
    Ok(())
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..3)
}

/// The mutations reach `check` often, and both its verdicts happen: a fuzzer
/// whose texts all fail to parse would never test it. Same strategy as
/// `a_mutated_valid_config_is_a_located_error_or_keeps_its_promises`, on a fixed seed.
#[test]
fn mutated_configs_reach_the_check_and_both_its_verdicts() {
    use proptest::test_runner::{Config as Cases, RngAlgorithm, TestRng, TestRunner};
    let counts: [AtomicUsize; 3] = Default::default();
    let mut runner = TestRunner::new_with_rng(
        Cases {
            cases: 1024,
            failure_persistence: None,
            ..Cases::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    runner
        .run(&(prop::bool::ANY, mutations()), |(standalone, m)| {
            let outcome = parse_and_check(&mutate(base(standalone), &m))?;
            counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let [parse_errors, invalid, checks] = counts.map(|c| c.load(Ordering::Relaxed));
    eprintln!(
        "of 1024: {parse_errors} parse errors, {invalid} refused by check, {checks} accepted"
    );
    assert!(
        invalid + checks >= 400,
        "check reached only {} times",
        invalid + checks
    );
    assert!(invalid >= 150, "check refused only {invalid}");
    assert!(checks >= 100, "check accepted only {checks}");
}

/// The reference config, with or without its central section.
fn base(standalone: bool) -> &'static str {
    static STANDALONE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if standalone {
        STANDALONE.get_or_init(|| {
            GOOD.split("[central]").next().unwrap().to_owned()
                + "[gpio]"
                + GOOD.split("[gpio]").nth(1).unwrap()
        })
    } else {
        GOOD
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_is_an_error_not_a_crash(text in "\\PC{0,400}") {
        parse_and_check(&text)?;
    }

    #[test]
    fn a_mutated_valid_config_is_a_located_error_or_keeps_its_promises(
        standalone in any::<bool>(),
        m in mutations(),
    ) {
        parse_and_check(&mutate(base(standalone), &m))?;
    }

    #[test]
    fn a_damaged_config_is_a_located_error_or_keeps_its_promises(
        at in 0usize..GOOD.len(),
        cut in 0usize..40,
        insert in "[\\[\\]{}=\",.a-z0-9 \\n-]{0,12}",
    ) {
        let mut text = GOOD.to_owned();
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let end = (at + cut).min(text.len());
        let end = (end..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text.replace_range(at..end, &insert);
        parse_and_check(&text)?;
    }

    #[test]
    fn arbitrary_policy_files_are_refused_cleanly(text in "\\PC{0,300}") {
        let signed = Config::parse(GOOD, Path::new("c.toml")).unwrap();
        prop_assert!(parse_policy(&text, &signed).is_err());
        let _ = parse_policy(&text, &standalone());
    }

    #[test]
    fn json_shaped_policy_garbage_is_refused_cleanly(
        text in "\\{(\"[a-z_]{1,10}\":(\\[\\]|\\{\\}|[0-9]{1,20}|\"[a-z0-9]{0,70}\"|null),?){0,8}\\}",
    ) {
        let signed = Config::parse(GOOD, Path::new("c.toml")).unwrap();
        prop_assert!(parse_policy(&text, &signed).is_err());
        if let Ok(data) = parse_policy(&text, &standalone()) {
            let _ = tobira_firmware::Snapshot::new(data);
        }
    }
}
