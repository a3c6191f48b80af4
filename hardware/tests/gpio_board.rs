//! The virtual GPIO board over its real Unix socket: a controller client and a test-harness observer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use embedded_hal::digital::{InputPin, OutputPin, StatefulOutputPin};
use serde_json::{json, Value};
use tobira_hardware::gpio::{LogicalPin, Polarity, VirtualBoard, VirtualBoardClient};

const WAIT: Duration = Duration::from_secs(3);

/// A harness connection speaking raw protocol lines, as a Python script would.
struct Observer {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Observer {
    fn connect(path: &Path, hello: &str) -> Self {
        let writer = UnixStream::connect(path).unwrap();
        let reader = BufReader::new(writer.try_clone().unwrap());
        let mut o = Observer { reader, writer };
        if !hello.is_empty() {
            o.send(hello);
        }
        o
    }

    fn send(&mut self, line: &str) {
        writeln!(self.writer, "{line}").unwrap();
    }

    /// The next line, or a panic at the deadline.
    fn next(&mut self) -> Value {
        let deadline = Instant::now() + WAIT;
        let left = deadline.saturating_duration_since(Instant::now());
        self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("no line from the board within {WAIT:?}: {e}"));
        assert!(line.ends_with('\n'), "partial line {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    fn read(&mut self, pin: u8) -> u64 {
        self.send(&format!(r#"{{"op":"read","pin":{pin}}}"#));
        let v = self.next();
        assert_eq!(
            (v["op"].as_str(), v["pin"].as_u64()),
            (Some("level"), Some(u64::from(pin))),
            "{v}"
        );
        v["level"].as_u64().unwrap()
    }
}

fn start_board(dir: &Path, init: &[(u8, u8)]) -> (tokio::runtime::Runtime, std::path::PathBuf) {
    let path = dir.join("gpio.sock");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let board = {
        let _guard = rt.enter();
        VirtualBoard::bind(&path, init).unwrap()
    };
    rt.spawn(board.run());
    (rt, path)
}

#[test]
fn observer_sees_controller_writes_and_drives_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, path) = start_board(dir.path(), &[(22, 1), (23, 1)]);

    let controller = VirtualBoardClient::connect(&path).unwrap();
    let mut strike = controller.pin(17).unwrap();
    let mut rex = controller.pin(22).unwrap();
    let mut contact = controller.pin(24).unwrap();
    assert!(rex.is_high().unwrap(), "--init 22=1 is visible at connect");
    assert!(contact.is_low().unwrap(), "undriven pins read 0");

    let mut obs = Observer::connect(&path, r#"{"op":"hello","role":"observer"}"#);
    obs.send(r#"{"op":"subscribe"}"#);
    // A read round trip proves the subscribe line has been handled.
    assert_eq!(obs.read(17), 0);

    strike.set_high().unwrap();
    let e1 = obs.next();
    assert_eq!(
        (&e1["op"], &e1["pin"], &e1["level"], &e1["by"]),
        (&json!("edge"), &json!(17), &json!(1), &json!("controller"))
    );
    assert!(strike.is_set_high().unwrap());
    strike.set_high().unwrap(); // no change, no edge
    strike.set_low().unwrap();
    let e2 = obs.next();
    assert_eq!((&e2["pin"], &e2["level"]), (&json!(17), &json!(0)));
    assert!(e2["t_us"].as_u64().unwrap() >= e1["t_us"].as_u64().unwrap());

    // The harness presses the request-to-exit button (active-low input).
    obs.send(r#"{"op":"drive","pin":22,"level":0}"#);
    let e3 = obs.next();
    assert_eq!(
        (&e3["pin"], &e3["level"], &e3["by"]),
        (&json!(22), &json!(0), &json!("observer"))
    );
    controller.wait_for_level(22, false, WAIT).unwrap();
    assert!(rex.is_low().unwrap());
    let mut rex = LogicalPin::new(rex, Polarity::ActiveLow);
    assert!(
        rex.is_high().unwrap(),
        "pressed = asserted through active-low"
    );

    // An active-low relay: energising it pulls the line low.
    let mut relay = LogicalPin::new(controller.pin(26).unwrap(), Polarity::ActiveLow);
    relay.set_low().unwrap();
    let e4 = obs.next();
    assert_eq!((&e4["pin"], &e4["level"]), (&json!(26), &json!(1)));
    relay.set_high().unwrap();
    let e5 = obs.next();
    assert_eq!((&e5["pin"], &e5["level"]), (&json!(26), &json!(0)));
    assert_eq!(obs.read(26), 0);
}

#[test]
fn malformed_and_refused_lines_get_errors_and_the_connection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, path) = start_board(dir.path(), &[]);

    let mut early = Observer::connect(&path, "");
    early.send(r#"{"op":"read","pin":3}"#);
    assert_eq!(early.next()["op"], "error", "hello must come first");
    early.send(r#"{"op":"hello","role":"observer"}"#);
    assert_eq!(early.read(3), 0);

    let mut obs = Observer::connect(&path, r#"{"op":"hello","role":"observer"}"#);
    let long = "x".repeat(5000);
    for bad in [
        "this is not json",
        "{\"op\":\"drive\",\"pin\":22}",
        "{\"op\":\"drive\",\"pin\":99,\"level\":1}",
        "{\"op\":\"drive\",\"pin\":22,\"level\":7}",
        "{\"op\":\"write\",\"pin\":17,\"level\":1}",
        "{\"op\":\"teleport\"}",
        "{\"op\":\"hello\",\"role\":\"observer\"}",
        long.as_str(),
    ] {
        obs.send(bad);
        let v = obs.next();
        assert_eq!(v["op"], "error", "for {bad:.40}: {v}");
        assert!(!v["message"].as_str().unwrap().is_empty());
    }
    // Still alive and still obeying.
    obs.send(r#"{"op":"drive","pin":5,"level":1}"#);
    assert_eq!(obs.read(5), 1);

    let controller = VirtualBoardClient::connect(&path).unwrap();
    let mut c = Observer::connect(&path, r#"{"op":"hello","role":"controller"}"#);
    c.send(r#"{"op":"drive","pin":5,"level":0}"#);
    assert_eq!(
        c.next()["op"],
        "error",
        "controllers write, they do not drive"
    );
    assert!(controller.pin(28).is_err());
}

#[test]
fn backend_neutral_lines_drive_and_read_the_virtual_board() {
    use tobira_hardware::gpio::{Gpio, GpioBackend, GpioError, Pull};
    let dir = tempfile::tempdir().unwrap();
    let (_rt, path) = start_board(dir.path(), &[(22, 1)]);
    let gpio = Gpio::open(&GpioBackend::Virtual(path.clone())).unwrap();
    let mut obs = Observer::connect(&path, r#"{"op":"hello","role":"observer"}"#);
    obs.send(r#"{"op":"subscribe"}"#);
    assert_eq!(obs.read(17), 0);

    // Claimed at the level asked for: an active-low relay starts released (high).
    let mut relay = gpio.output(17, true).unwrap();
    let e = obs.next();
    assert_eq!((&e["pin"], &e["level"]), (&json!(17), &json!(1)));
    relay.set_low().unwrap();
    assert_eq!(obs.next()["level"], 0);

    let mut rex = gpio.input(22, Pull::Up).unwrap();
    assert!(rex.is_high().unwrap());
    obs.send(r#"{"op":"drive","pin":22,"level":0}"#);
    assert_eq!(obs.next()["pin"], 22);
    // The client's mirror follows the edge a moment later.
    let deadline = Instant::now() + WAIT;
    while !rex.is_low().unwrap() {
        assert!(
            Instant::now() < deadline,
            "the pressed button never read low"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    assert!(matches!(
        gpio.output(28, false),
        Err(GpioError::NoSuchPin(28))
    ));
    let missing = dir.path().join("no-board.sock");
    assert!(matches!(
        Gpio::open(&GpioBackend::Virtual(missing)),
        Err(GpioError::Board(_))
    ));
    #[cfg(not(feature = "rpi"))]
    assert!(matches!(
        Gpio::open(&GpioBackend::Rpi),
        Err(GpioError::NoRpiSupport)
    ));
}
