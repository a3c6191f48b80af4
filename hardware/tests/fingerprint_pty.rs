//! The EF01 driver against the virtual module, through a real pseudo-terminal and tokio-serial.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use tobira_hardware::fingerprint::{
    Biometric, BiometricError, DriverConfig, Ef01Driver, FingerprintError, Presentation, SimConfig,
    VerifyOutcome, VirtualFingerprintModule,
};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(3);

fn module(config: SimConfig) -> VirtualFingerprintModule {
    VirtualFingerprintModule::start(config).unwrap()
}

async fn open(
    m: &VirtualFingerprintModule,
    config: DriverConfig,
) -> Result<Ef01Driver<tokio_serial::SerialStream>, FingerprintError> {
    Ef01Driver::open(m.device_path().to_str().unwrap(), 57_600, config).await
}

#[tokio::test]
async fn verify_matches_the_enrolled_finger() {
    let m = module(SimConfig {
        enrolled: vec![1, 3],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    m.present(Presentation::EnrolledIn(3), 1).unwrap();
    let outcome = d.verify(3, Instant::now() + DEADLINE).await.unwrap();
    assert!(
        matches!(outcome, VerifyOutcome::Matched { score } if score >= 50),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn verify_rejects_another_finger() {
    let m = module(SimConfig {
        enrolled: vec![1, 3],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    // The finger of slot 1 is enrolled, but not in slot 3: 1:1 must say no.
    m.present(Presentation::EnrolledIn(1), 1).unwrap();
    assert_eq!(
        d.verify(3, Instant::now() + DEADLINE).await.unwrap(),
        VerifyOutcome::NoMatch { score: 0 }
    );
    m.present(Presentation::Stranger, 1).unwrap();
    assert_eq!(
        d.verify(3, Instant::now() + DEADLINE).await.unwrap(),
        VerifyOutcome::NoMatch { score: 0 }
    );
}

#[tokio::test]
async fn verify_without_finger_times_out_at_the_deadline() {
    let m = module(SimConfig {
        enrolled: vec![2],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    let started = Instant::now();
    let wait = Duration::from_millis(400);
    let outcome = d.verify(2, started + wait).await.unwrap();
    assert_eq!(outcome, VerifyOutcome::NoFinger);
    let took = started.elapsed();
    assert!(took >= wait, "gave up early after {took:?}");
    assert!(took < wait + Duration::from_secs(2), "overran by {took:?}");
}

#[tokio::test]
async fn an_abandoned_wait_stops_between_polls_and_leaves_the_line_clean() {
    let m = module(SimConfig {
        enrolled: vec![2, 5],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    let started = Instant::now();
    let outcome = d
        .verify_slot_unless(
            2,
            started + Duration::from_secs(60),
            tokio::time::sleep(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert_eq!(outcome, None);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "gave up early after {took:?}"
    );
    assert!(
        took < Duration::from_secs(30),
        "ran on to the deadline: {took:?}"
    );
    // The next person's verification runs on a line with nothing stale on it.
    m.present(Presentation::EnrolledIn(5), 1).unwrap();
    let outcome = d.verify(5, Instant::now() + DEADLINE).await.unwrap();
    assert!(
        matches!(outcome, VerifyOutcome::Matched { .. }),
        "{outcome:?}"
    );
    // Without `abandon`, a finger still completes the verification.
    m.present(Presentation::EnrolledIn(2), 1).unwrap();
    let outcome = d
        .verify_slot_unless(2, Instant::now() + DEADLINE, std::future::pending())
        .await
        .unwrap();
    assert!(
        matches!(outcome, Some(VerifyOutcome::Matched { .. })),
        "{outcome:?}"
    );
}

/// Starts a verification through the `Biometric` seam, as the controller does.
async fn verify_through_the_seam<B: Biometric>(
    module: &mut B,
    slot: u16,
    deadline: Instant,
    cancel: tokio::sync::oneshot::Receiver<()>,
) -> Result<Option<VerifyOutcome>, BiometricError> {
    module
        .verify_cancellable(slot, deadline, async {
            let _ = cancel.await;
        })
        .await
}

#[tokio::test]
async fn a_cancelled_verify_stops_waiting_and_the_module_serves_the_next_one() {
    let m = module(SimConfig {
        enrolled: vec![2, 5],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    let (cancel, cancelled) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = cancel.send(());
    });
    let outcome = verify_through_the_seam(&mut d, 2, started + Duration::from_secs(60), cancelled)
        .await
        .unwrap();
    canceller.await.unwrap();
    assert_eq!(outcome, None, "a cancelled wait has no outcome");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ran on towards the deadline"
    );
    // The module answers the next person at once, through the same seam.
    m.present(Presentation::EnrolledIn(5), 1).unwrap();
    let (_keep, never) = tokio::sync::oneshot::channel();
    let outcome = verify_through_the_seam(&mut d, 5, Instant::now() + DEADLINE, never)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Some(VerifyOutcome::Matched { .. })),
        "{outcome:?}"
    );
    // A cancellation that never comes lets the deadline end the wait.
    let (_keep, never) = tokio::sync::oneshot::channel();
    let outcome = verify_through_the_seam(
        &mut d,
        5,
        Instant::now() + Duration::from_millis(300),
        never,
    )
    .await
    .unwrap();
    assert_eq!(outcome, Some(VerifyOutcome::NoFinger));
}

#[tokio::test]
async fn finger_arriving_late_is_still_captured() {
    let m = module(SimConfig {
        enrolled: vec![2],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    let verify = tokio::spawn(async move {
        let outcome = d.verify(2, Instant::now() + DEADLINE).await;
        (d, outcome)
    });
    // The driver is polling GenImg; the finger goes down while it waits.
    tokio::time::sleep(Duration::from_millis(250)).await;
    m.present(Presentation::EnrolledIn(2), 1).unwrap();
    let (_d, outcome) = verify.await.unwrap();
    assert!(matches!(outcome.unwrap(), VerifyOutcome::Matched { .. }));
}

#[tokio::test]
async fn enroll_then_verify_then_delete() {
    let m = module(SimConfig {
        capacity: 20,
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    m.present(Presentation::Finger(42), 2).unwrap();
    assert!(d.enroll(7, Instant::now() + DEADLINE).await.unwrap());
    assert_eq!(m.enrolled(), vec![7]);
    let info = d.info().await.unwrap();
    assert_eq!((info.capacity, info.enrolled), (20, 1));

    m.present(Presentation::Finger(42), 1).unwrap();
    assert!(matches!(
        d.verify(7, Instant::now() + DEADLINE).await.unwrap(),
        VerifyOutcome::Matched { .. }
    ));

    d.delete(7).await.unwrap();
    assert!(m.enrolled().is_empty());
    m.present(Presentation::Finger(42), 1).unwrap();
    assert_eq!(
        d.verify(7, Instant::now() + DEADLINE).await,
        Err(BiometricError::EmptySlot(7))
    );
}

#[tokio::test]
async fn enroll_without_finger_reports_false() {
    let m = module(SimConfig::default());
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    assert!(!d
        .enroll(1, Instant::now() + Duration::from_millis(300))
        .await
        .unwrap());
    assert!(m.enrolled().is_empty());
}

#[tokio::test]
async fn password_and_address_are_used() {
    let m = module(SimConfig {
        password: 0xC0FF_EE00,
        address: 0x1234_5678,
        enrolled: vec![5],
        ..SimConfig::default()
    });
    let wrong = open(
        &m,
        DriverConfig {
            address: 0x1234_5678,
            password: 1,
            ..DriverConfig::default()
        },
    )
    .await;
    assert!(
        matches!(wrong, Err(FingerprintError::WrongPassword)),
        "{wrong:?}"
    );

    // Wrong address: the module stays silent and the driver times out.
    let silent = open(
        &m,
        DriverConfig {
            password: 0xC0FF_EE00,
            command_timeout: Duration::from_millis(200),
            retries: 0,
            ..DriverConfig::default()
        },
    )
    .await;
    assert!(
        matches!(silent, Err(FingerprintError::Timeout { .. })),
        "{silent:?}"
    );

    let mut d = open(
        &m,
        DriverConfig {
            address: 0x1234_5678,
            password: 0xC0FF_EE00,
            ..DriverConfig::default()
        },
    )
    .await
    .unwrap();
    m.present(Presentation::EnrolledIn(5), 1).unwrap();
    assert!(matches!(
        d.verify(5, Instant::now() + DEADLINE).await.unwrap(),
        VerifyOutcome::Matched { .. }
    ));
}

#[tokio::test]
async fn recovers_from_garbage_and_bad_checksums() {
    let m = module(SimConfig {
        enrolled: vec![4],
        bad_checksum_every: Some(3),
        latency: Duration::from_millis(5),
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    for round in 0..4 {
        // Line noise, including a false header, before the next reply.
        m.inject_garbage(&[0x00, 0xEF, 0x01, 0xFF, 0x13, 0x37, 0xEF]);
        m.present(Presentation::EnrolledIn(4), 1).unwrap();
        let outcome = d.verify(4, Instant::now() + DEADLINE).await.unwrap();
        assert!(
            matches!(outcome, VerifyOutcome::Matched { .. }),
            "round {round}: {outcome:?}"
        );
    }
    let params = d.system_parameters().await.unwrap();
    assert_eq!(params.baud(), 57_600);
}

#[tokio::test]
async fn control_socket_and_link() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("finger0");
    let control = dir.path().join("finger0.ctl");
    let mut m = module(SimConfig {
        enrolled: vec![1],
        link: Some(link.clone()),
        ..SimConfig::default()
    });
    m.serve_control(&control).unwrap();
    assert_eq!(m.device_path(), link.as_path());
    let mut d = Ef01Driver::open(link.to_str().unwrap(), 57_600, DriverConfig::default())
        .await
        .unwrap();

    let stream = UnixStream::connect(&control).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut ask = |line: &str| {
        writeln!(&stream, "{line}").unwrap();
        let mut answer = String::new();
        reader.read_line(&mut answer).unwrap();
        serde_json::from_str::<serde_json::Value>(&answer).unwrap()
    };
    assert_eq!(ask(r#"{"next":"match","slot":1}"#)["ok"], true);
    assert!(matches!(
        d.verify(1, Instant::now() + DEADLINE).await.unwrap(),
        VerifyOutcome::Matched { .. }
    ));
    assert_eq!(ask(r#"{"next":"nomatch"}"#)["ok"], true);
    assert!(matches!(
        d.verify(1, Instant::now() + DEADLINE).await.unwrap(),
        VerifyOutcome::NoMatch { .. }
    ));
    assert_eq!(ask("not a command")["ok"], false);
    assert_eq!(ask("slots")["slots"], serde_json::json!([1]));
    drop(m);
    assert!(!link.exists(), "the link is removed with the module");
}

#[tokio::test]
async fn a_slot_the_module_does_not_hold_is_that_persons_error_not_a_module_fault() {
    let m = module(SimConfig {
        capacity: 10,
        enrolled: vec![3],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    // Central says slot 5, the module's flash holds nothing there; slot 12 is
    // past the library. The driver says so with a typed error, at once,
    // without making the person put a finger on the sensor first.
    for slot in [5, 12] {
        let started = Instant::now();
        let e = d
            .verify_slot(slot, Instant::now() + Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(
            matches!(e, FingerprintError::EmptySlot { slot: s, .. } if s == slot),
            "{e:?}"
        );
        assert!(!e.is_module_fault(), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // The same open driver still serves everyone else.
    m.present(Presentation::EnrolledIn(3), 1).unwrap();
    let outcome = d.verify(3, Instant::now() + DEADLINE).await.unwrap();
    assert!(
        matches!(outcome, VerifyOutcome::Matched { .. }),
        "{outcome:?}"
    );
    // Through the Biometric seam it is the person's empty slot too.
    assert_eq!(
        d.verify(5, Instant::now() + DEADLINE).await,
        Err(BiometricError::EmptySlot(5))
    );
}

#[tokio::test]
async fn a_silent_module_is_a_module_fault() {
    let m = module(SimConfig {
        enrolled: vec![3],
        ..SimConfig::default()
    });
    let mut d = open(
        &m,
        DriverConfig {
            command_timeout: Duration::from_millis(200),
            retries: 0,
            ..DriverConfig::default()
        },
    )
    .await
    .unwrap();
    drop(m);
    let e = d
        .verify_slot(3, Instant::now() + DEADLINE)
        .await
        .unwrap_err();
    assert!(e.is_module_fault(), "{e:?}");
}

#[tokio::test]
async fn enrollment_picks_the_lowest_free_slot_and_says_why_it_could_not() {
    use tobira_hardware::fingerprint::EnrollOutcome;
    let m = module(SimConfig {
        capacity: 5,
        enrolled: vec![0, 1, 3],
        ..SimConfig::default()
    });
    let mut d = open(&m, DriverConfig::default()).await.unwrap();
    // Slot 2 is free on the module but central has it (recorded, flash lost):
    // not free. Slot 4 is.
    assert_eq!(d.free_slot(&[2]).await.unwrap(), Some(4));
    assert_eq!(d.free_slot(&[]).await.unwrap(), Some(2));

    // Two captures of different fingers do not make a template.
    m.present(Presentation::Finger(70), 1).unwrap();
    m.present(Presentation::Finger(71), 1).unwrap();
    assert_eq!(
        d.enroll_free_slot(&[2], Instant::now() + DEADLINE)
            .await
            .unwrap(),
        EnrollOutcome::Mismatch
    );
    assert_eq!(m.enrolled(), vec![0, 1, 3]);

    // No finger: nothing stored.
    assert_eq!(
        d.enroll_free_slot(&[2], Instant::now() + Duration::from_millis(300))
            .await
            .unwrap(),
        EnrollOutcome::NoFinger
    );

    // The same finger twice: stored in the slot picked, and it verifies.
    m.present(Presentation::Finger(72), 2).unwrap();
    assert_eq!(
        d.enroll_free_slot(&[2], Instant::now() + DEADLINE)
            .await
            .unwrap(),
        EnrollOutcome::Stored { slot: 4 }
    );
    assert_eq!(m.enrolled(), vec![0, 1, 3, 4]);
    m.present(Presentation::Finger(72), 1).unwrap();
    assert!(matches!(
        d.verify(4, Instant::now() + DEADLINE).await.unwrap(),
        VerifyOutcome::Matched { .. }
    ));

    // Full: said at once, without asking for a finger.
    assert_eq!(
        d.enroll_free_slot(&[2], Instant::now() + DEADLINE)
            .await
            .unwrap(),
        EnrollOutcome::Full
    );
}
