//! The simulated card reader over its real Unix socket: taps, removals, and lines it must refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;
use tobira_hardware::card::sim_reader::{socket_path, MAX_LINE};
use tobira_hardware::card::{CardReader, CardTypeGuess, ReaderEvent, SimCardReader};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const WAIT: Duration = Duration::from_secs(3);

struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl Client {
    async fn connect(reader: &SimCardReader) -> Self {
        let (read, write) = UnixStream::connect(reader.path())
            .await
            .unwrap()
            .into_split();
        Client {
            lines: BufReader::new(read).lines(),
            write,
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) -> Value {
        self.write.write_all(bytes).await.unwrap();
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("no reply within the deadline")
            .unwrap()
            .expect("the reader hung up");
        serde_json::from_str(&line).unwrap()
    }

    async fn send(&mut self, line: &str) -> Value {
        self.send_raw(format!("{line}\n").as_bytes()).await
    }
}

async fn next(reader: &mut SimCardReader) -> ReaderEvent {
    tokio::time::timeout(WAIT, reader.next_event())
        .await
        .expect("no event within the deadline")
        .expect("the reader stopped")
}

/// No event arrives within a short window (the reader's events are queued
/// before its reply is sent, so nothing can still be on its way).
async fn no_event(reader: &mut SimCardReader) {
    let got = tokio::time::timeout(Duration::from_millis(100), reader.next_event()).await;
    assert!(got.is_err(), "unexpected event {got:?}");
}

async fn started(dir: &tempfile::TempDir) -> SimCardReader {
    let path = socket_path(dir.path(), "front");
    let mut reader = SimCardReader::bind("sim:front", &path).unwrap();
    assert_eq!(
        next(&mut reader).await,
        ReaderEvent::ReaderAdded("sim:front".into())
    );
    reader
}

#[tokio::test]
async fn a_good_line_is_a_tap_then_a_removal_and_the_socket_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = started(&dir).await;
    assert_eq!(reader.path(), dir.path().join("readers/front.sock"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(reader.path()), 0o600);
    assert_eq!(mode(&dir.path().join("readers")), 0o700);

    let mut client = Client::connect(&reader).await;
    let answer = client
        .send(r#"{"uid":"04a1b2c3","card_type":"mifare_classic"}"#)
        .await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["uid"], "04A1B2C3");
    match next(&mut reader).await {
        ReaderEvent::Tap(tap) => {
            assert_eq!(tap.reader, "sim:front");
            assert_eq!(tap.uid, vec![0x04, 0xA1, 0xB2, 0xC3]);
            assert_eq!(tap.card_type, CardTypeGuess::MifareClassic);
        }
        other => panic!("expected a tap, got {other:?}"),
    }
    assert_eq!(
        next(&mut reader).await,
        ReaderEvent::CardRemoved("sim:front".into())
    );

    let path = reader.path().to_owned();
    drop(reader);
    assert!(!path.exists(), "the socket outlived its reader");
}

#[tokio::test]
async fn malformed_lines_get_an_error_reply_and_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = started(&dir).await;
    let mut client = Client::connect(&reader).await;
    for bad in [
        "04A1B2C3",
        "{",
        r#"{"uid":"04A1B2"}"#,
        r#"{"uid":"not hex"}"#,
        r#"{"uid":"04A1B2C3","card_type":"platinum"}"#,
        r#"{"uid":"04A1B2C3","unlock":true}"#,
        r#"{"event":"tap"}"#,
    ] {
        let answer = client.send(bad).await;
        assert_eq!(answer["ok"], false, "{bad}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("malformed line"),
            "{bad}: {answer}"
        );
    }
    let answer = client.send_raw(b"\xff\xfe{}\n").await;
    assert_eq!(answer["error"], "malformed line: not UTF-8");
    no_event(&mut reader).await;
    // The connection is still good for the next card.
    assert_eq!(client.send(r#"{"uid":"04A1B2C3"}"#).await["ok"], true);
    assert!(matches!(next(&mut reader).await, ReaderEvent::Tap(_)));
}

#[tokio::test]
async fn an_oversize_line_is_refused_whole_and_the_next_line_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = started(&dir).await;
    let mut client = Client::connect(&reader).await;
    // A valid tap hidden at the end of a huge line must not get through.
    let long = format!(
        r#"{{"uid":"04A1B2C3","card_type":"mifare_classic"{}}}"#,
        " ".repeat(4 * MAX_LINE)
    );
    let answer = client.send(&long).await;
    assert_eq!(answer["ok"], false, "{answer}");
    assert_eq!(
        answer["error"],
        format!("line longer than {MAX_LINE} bytes")
    );
    no_event(&mut reader).await;
    let answer = client.send(r#"{"uid":"012E3C4D5E6F7081"}"#).await;
    assert_eq!(answer["card_type"], "felica", "{answer}");
    match next(&mut reader).await {
        ReaderEvent::Tap(tap) => assert_eq!(tap.card_type, CardTypeGuess::Felica),
        other => panic!("expected a tap, got {other:?}"),
    }
}

#[tokio::test]
async fn two_taps_from_two_connections_are_two_presentations() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = started(&dir).await;
    for uid in ["04A10001", "04A10002000002"] {
        let mut client = Client::connect(&reader).await;
        assert_eq!(
            client.send(&format!(r#"{{"uid":"{uid}"}}"#)).await["ok"],
            true
        );
    }
    let mut taps = Vec::new();
    for _ in 0..4 {
        match next(&mut reader).await {
            ReaderEvent::Tap(tap) => taps.push(hex::encode_upper(tap.uid)),
            ReaderEvent::CardRemoved(r) => assert_eq!(r, "sim:front"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(taps, ["04A10001", "04A10002000002"]);
}

#[tokio::test]
async fn a_stale_socket_is_replaced_but_a_regular_file_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = socket_path(dir.path(), "front");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A socket left behind by a controller that was killed.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let mut reader = SimCardReader::bind("sim:front", &path).unwrap();
    next(&mut reader).await;
    let mut client = Client::connect(&reader).await;
    assert_eq!(client.send(r#"{"uid":"04A1B2C3"}"#).await["ok"], true);
    drop(reader);

    std::fs::write(&path, "precious").unwrap();
    let err = SimCardReader::bind("sim:front", &path).unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    assert!(SimCardReader::bind("sim:../etc", &path).is_err());
}
