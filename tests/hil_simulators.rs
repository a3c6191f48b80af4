//! `tobira hil gpio` and `tobira hil finger` as separate processes, driven the way integrators do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{simulator, Scratch, BIN};
use tobira_hardware::embedded_hal::digital::{InputPin, OutputPin};
use tobira_hardware::gpio::VirtualBoardClient;

const WAIT: Duration = Duration::from_secs(5);

fn line(stream: &mut BufReader<UnixStream>) -> Value {
    stream.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    let mut l = String::new();
    stream.read_line(&mut l).unwrap();
    serde_json::from_str(&l).unwrap()
}

#[test]
fn gpio_board_process() {
    let dir = Scratch::new("gpio");
    let socket = dir.path().join("gpio.sock");
    let (_board, ready, _) = simulator(&[
        "hil",
        "gpio",
        "--socket",
        socket.to_str().unwrap(),
        "--init",
        "22=1",
    ]);
    assert_eq!(ready["socket"], socket.to_str().unwrap());

    let controller = VirtualBoardClient::connect(&socket).unwrap();
    let mut rex = controller.pin(22).unwrap();
    assert!(rex.is_high().unwrap());

    let obs = UnixStream::connect(&socket).unwrap();
    let mut w = obs.try_clone().unwrap();
    let mut r = BufReader::new(obs);
    writeln!(w, r#"{{"op":"hello","role":"observer"}}"#).unwrap();
    writeln!(w, r#"{{"op":"subscribe"}}"#).unwrap();
    writeln!(w, "garbage").unwrap();
    assert_eq!(line(&mut r)["op"], "error");

    controller.pin(17).unwrap().set_high().unwrap();
    let edge = line(&mut r);
    assert_eq!(
        (edge["op"].as_str(), edge["pin"].as_u64()),
        (Some("edge"), Some(17))
    );

    writeln!(w, r#"{{"op":"drive","pin":22,"level":0}}"#).unwrap();
    controller.wait_for_level(22, false, WAIT).unwrap();
    assert!(rex.is_low().unwrap());
}

#[test]
fn fingerprint_module_process_and_device_commands() {
    let dir = Scratch::new("finger");
    let link = dir.path().join("finger");
    let control = dir.path().join("finger.ctl");
    let (_module, ready, _) = simulator(&[
        "hil",
        "finger",
        "--link",
        link.to_str().unwrap(),
        "--control",
        control.to_str().unwrap(),
        "--enrolled",
        "3,4",
        "--password",
        "1234ABCD",
    ]);
    assert_eq!(ready["device"], link.to_str().unwrap());

    let device = |args: &[&str]| -> Value {
        let out = Command::new(BIN)
            .args(["device", "finger"])
            .args(args)
            .args(["--port", link.to_str().unwrap(), "--password", "1234ABCD"])
            .args(["--timeout-ms", "1500"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let info = device(&["info"]);
    assert_eq!(
        (info["capacity"].as_u64(), info["enrolled"].as_u64()),
        (Some(162), Some(2))
    );

    let ctl = UnixStream::connect(&control).unwrap();
    let mut ctl_w = ctl.try_clone().unwrap();
    let mut ctl_r = BufReader::new(ctl);
    writeln!(ctl_w, r#"{{"next":"match","slot":3}}"#).unwrap();
    assert_eq!(line(&mut ctl_r)["ok"], true);
    assert_eq!(
        device(&["verify", "--slot", "3"])["result"]["outcome"],
        "matched"
    );
    assert_eq!(
        device(&["verify", "--slot", "3"])["result"]["outcome"],
        "no_finger"
    );

    writeln!(ctl_w, r#"{{"next":"finger","finger":77,"times":2}}"#).unwrap();
    assert_eq!(line(&mut ctl_r)["ok"], true);
    assert_eq!(device(&["enroll", "--slot", "9"])["enrolled"], true);
    assert_eq!(device(&["delete", "--slot", "4"])["deleted"], true);
    writeln!(ctl_w, "slots").unwrap();
    assert_eq!(line(&mut ctl_r)["slots"], serde_json::json!([3, 9]));

    let wrong = Command::new(BIN)
        .args(["device", "finger", "info", "--port", link.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("password"));
}
