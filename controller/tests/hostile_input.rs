//! Hostile configuration and policy files: every one is an error with a message, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use proptest::prelude::*;
use tobira_controller::config::Config;
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_is_an_error_not_a_crash(text in "\\PC{0,400}") {
        if let Ok(c) = Config::parse(&text, Path::new("c.toml")) {
            let _ = c.check();
        }
    }

    #[test]
    fn a_damaged_config_is_an_error_or_still_checks(
        at in 0usize..GOOD.len(),
        cut in 0usize..40,
        insert in "[\\[\\]{}=\",.a-z0-9 \\n-]{0,12}",
    ) {
        let mut text = GOOD.to_owned();
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let end = (at + cut).min(text.len());
        let end = (end..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text.replace_range(at..end, &insert);
        match Config::parse(&text, Path::new("c.toml")) {
            Ok(c) => { let _ = c.check(); }
            Err(e) => prop_assert!(e.to_string().contains("c.toml")),
        }
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
