//! The serial driver for EF01 fingerprint modules: command/ack exchange, verify and enroll flows.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_serial::SerialPortBuilderExt;

use super::codec::{
    Ack, Command, Confirmation, Decoder, EncodeError, FrameError, Packet, PacketKind, PayloadError,
    SystemParameters, DEFAULT_ADDRESS,
};
use super::{Biometric, BiometricError, BiometricInfo, VerifyOutcome};

/// How a wait for a finger ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// An image was taken and turned into a character file.
    Image,
    /// No usable finger before the deadline.
    NoFinger,
    /// The caller stopped waiting.
    Abandoned,
}

/// How an enrollment into a free slot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// The template is stored in `slot`.
    Stored {
        /// The slot picked.
        slot: u16,
    },
    /// No usable finger before the deadline (for either capture).
    NoFinger,
    /// The two captures were not of the same finger (RegModel refused them).
    Mismatch,
    /// Every slot is in use (on the module or in `taken`).
    Full,
}

/// Default line speed of the module family.
pub const DEFAULT_BAUD: u32 = 57_600;

/// How the driver talks to one module.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Module address (factory default `FFFFFFFF`).
    pub address: u32,
    /// Module password, verified at open (factory default 0).
    pub password: u32,
    /// How long to wait for the acknowledgement of one command.
    pub command_timeout: Duration,
    /// Pause between captures while no finger is on the sensor.
    pub capture_interval: Duration,
    /// Lowest Match score accepted as the same finger.
    pub match_threshold: u16,
    /// How many times a command is resent after a corrupt or missing reply.
    pub retries: u8,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            address: DEFAULT_ADDRESS,
            password: 0,
            command_timeout: Duration::from_millis(1000),
            capture_interval: Duration::from_millis(100),
            // Vendors' examples accept a score of 50 or more as a match.
            match_threshold: 50,
            retries: 2,
        }
    }
}

/// Errors of the fingerprint driver.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// The serial port could not be opened.
    #[error("cannot open serial port {path}: {source}")]
    Open {
        /// Device path.
        path: String,
        /// Underlying error.
        source: tokio_serial::Error,
    },
    /// Reading or writing the line failed.
    #[error("serial I/O: {0}")]
    Io(#[from] std::io::Error),
    /// No valid acknowledgement within the command timeout, after retries.
    #[error("no valid reply to {command:?} within {timeout:?}")]
    Timeout {
        /// Command sent.
        command: Command,
        /// Per-attempt timeout.
        timeout: Duration,
    },
    /// The module refused the password.
    #[error("the module refused the password")]
    WrongPassword,
    /// The module answered with an error confirmation.
    #[error("{command:?} failed: {code}")]
    Rejected {
        /// Command sent.
        command: Command,
        /// Confirmation received.
        code: Confirmation,
    },
    /// The acknowledgement was too short for the command.
    #[error("malformed reply: {0}")]
    Payload(#[from] PayloadError),
    /// A packet could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The module answered, and the slot holds no usable template: empty,
    /// unreadable, or beyond the library. That is one person's enrollment
    /// gone wrong, not the module's fault: it keeps serving everyone else.
    #[error("template slot {slot} holds no usable template: {code}")]
    EmptySlot {
        /// The slot asked for.
        slot: u16,
        /// What the module answered (`ReadTemplateError` or `PageOutOfRange`).
        code: Confirmation,
    },
}

impl FingerprintError {
    /// Whether the module itself failed (no answer, garbage, a closed line,
    /// an unexpected refusal) rather than one person's enrollment. Only a
    /// module fault justifies taking the module offline and reopening it.
    pub fn is_module_fault(&self) -> bool {
        !matches!(self, FingerprintError::EmptySlot { .. })
    }
}

/// A driver for one module on one serial line (or anything byte-stream-like).
#[derive(Debug)]
pub struct Ef01Driver<S> {
    stream: S,
    decoder: Decoder,
    config: DriverConfig,
}

impl Ef01Driver<tokio_serial::SerialStream> {
    /// Opens `path` at `baud` and verifies the password.
    pub async fn open(
        path: &str,
        baud: u32,
        config: DriverConfig,
    ) -> Result<Self, FingerprintError> {
        let stream = tokio_serial::new(path, baud)
            .timeout(config.command_timeout)
            .open_native_async()
            .map_err(|source| FingerprintError::Open {
                path: path.to_owned(),
                source,
            })?;
        Self::with_stream(stream, config).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Ef01Driver<S> {
    /// Wraps an open byte stream and verifies the password.
    pub async fn with_stream(stream: S, config: DriverConfig) -> Result<Self, FingerprintError> {
        let mut driver = Ef01Driver {
            stream,
            decoder: Decoder::new(),
            config,
        };
        let password = driver.config.password;
        let ack = driver.command(Command::VfyPwd { password }).await?;
        match ack.code {
            Confirmation::Ok => Ok(driver),
            Confirmation::WrongPassword => Err(FingerprintError::WrongPassword),
            code => Err(FingerprintError::Rejected {
                command: Command::VfyPwd { password },
                code,
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// Sends one command and returns the module's acknowledgement, whatever
    /// its confirmation code. Corrupt frames and garbage are skipped; if no
    /// valid ack arrives in time, the command is resent up to `retries` times.
    pub async fn command(&mut self, command: Command) -> Result<Ack, FingerprintError> {
        let wire = Packet::command(self.config.address, &command).encode()?;
        for attempt in 0..=self.config.retries {
            // A late reply to an earlier, timed-out command must not be taken
            // for this command's reply.
            self.drain_stale().await?;
            self.stream.write_all(&wire).await?;
            self.stream.flush().await?;
            match self
                .read_ack(Instant::now() + self.config.command_timeout)
                .await?
            {
                // The module says our command arrived corrupted: send it again.
                Some(ack) if ack.code == Confirmation::PacketReceiveError => {
                    tracing::warn!(
                        ?command,
                        attempt,
                        "fingerprint module got a corrupt command"
                    );
                }
                Some(ack) => return Ok(ack),
                None => tracing::warn!(?command, attempt, "no valid reply from fingerprint module"),
            }
        }
        Err(FingerprintError::Timeout {
            command,
            timeout: self.config.command_timeout,
        })
    }

    /// Reads until a valid ack from our module, a frame with a bad checksum
    /// (`None`, so the caller resends) or the deadline (`None`).
    async fn read_ack(&mut self, deadline: Instant) -> Result<Option<Ack>, FingerprintError> {
        let mut buf = [0u8; 256];
        loop {
            while let Some(frame) = self.decoder.next_frame() {
                match frame {
                    Ok(p) if p.kind == PacketKind::Ack && p.address == self.config.address => {
                        return Ok(Some(Ack::parse(&p.payload)?));
                    }
                    Ok(p) => tracing::debug!(?p, "ignoring packet that is not our ack"),
                    // A whole frame arrived damaged: most likely our ack, so resend.
                    Err(e @ FrameError::BadChecksum { .. }) => {
                        tracing::warn!(error = %e, "corrupt frame from fingerprint module");
                        return Ok(None);
                    }
                    // A header-shaped bit of line noise; the real ack may follow it.
                    Err(e) => tracing::debug!(error = %e, "skipping noise from fingerprint module"),
                }
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => {
                    return Err(FingerprintError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "serial line closed",
                    )))
                }
                Ok(Ok(n)) => self.decoder.feed(&buf[..n]),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Throws away whatever is already waiting on the line.
    async fn drain_stale(&mut self) -> Result<(), FingerprintError> {
        self.decoder.clear();
        let mut buf = [0u8; 256];
        // A zero-length wait polls the stream once: take only what has already arrived.
        while let Ok(read) = tokio::time::timeout(Duration::ZERO, self.stream.read(&mut buf)).await
        {
            match read? {
                0 => break,
                n => self.decoder.feed(&buf[..n]),
            }
        }
        self.decoder.clear();
        Ok(())
    }

    /// Sends a command that must succeed.
    async fn expect_ok(&mut self, command: Command) -> Result<Ack, FingerprintError> {
        let ack = self.command(command).await?;
        if ack.code == Confirmation::Ok {
            Ok(ack)
        } else {
            Err(FingerprintError::Rejected {
                command,
                code: ack.code,
            })
        }
    }

    /// Captures a finger image and turns it into a character file in `buffer`,
    /// retrying until `deadline`. `Ok(false)` means no usable finger in time.
    pub async fn capture(
        &mut self,
        buffer: u8,
        deadline: Instant,
    ) -> Result<bool, FingerprintError> {
        let never = std::pin::pin!(std::future::pending::<()>());
        Ok(self.capture_unless(buffer, deadline, never).await? == Capture::Image)
    }

    /// [`Self::capture`], giving up early once `abandon` completes. `abandon`
    /// is only polled while the driver sleeps between two GenImg polls, when
    /// the module has answered everything it was asked: no answer is left in
    /// flight on the serial line to be mistaken for the next command's.
    async fn capture_unless<F: Future<Output = ()>>(
        &mut self,
        buffer: u8,
        deadline: Instant,
        mut abandon: Pin<&mut F>,
    ) -> Result<Capture, FingerprintError> {
        loop {
            let ack = self.command(Command::GenImg).await?;
            match ack.code {
                Confirmation::Ok => {
                    let tz = self.command(Command::Img2Tz { buffer }).await?;
                    match tz.code {
                        Confirmation::Ok => return Ok(Capture::Image),
                        // A smudged or partial press: ask for the finger again.
                        Confirmation::ImageTooMessy
                        | Confirmation::TooFewFeaturePoints
                        | Confirmation::NoValidImage => {}
                        code => {
                            return Err(FingerprintError::Rejected {
                                command: Command::Img2Tz { buffer },
                                code,
                            })
                        }
                    }
                }
                Confirmation::NoFinger | Confirmation::EnrollImageFailed => {}
                code => {
                    return Err(FingerprintError::Rejected {
                        command: Command::GenImg,
                        code,
                    })
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Capture::NoFinger);
            }
            tokio::select! {
                () = tokio::time::sleep_until((now + self.config.capture_interval).min(deadline)) => {}
                () = abandon.as_mut() => return Ok(Capture::Abandoned),
            }
        }
    }

    /// 1:1 verification against the template in `slot`: LoadChar 2 from
    /// `slot` → capture → Img2Tz 1 → Match. There is deliberately no 1:N path
    /// here. The template is loaded first so that a slot the module does not
    /// hold is reported at once ([`FingerprintError::EmptySlot`]), without
    /// asking the person for a finger that could never match.
    pub async fn verify_slot(
        &mut self,
        slot: u16,
        deadline: Instant,
    ) -> Result<VerifyOutcome, FingerprintError> {
        let outcome = self
            .verify_slot_unless(slot, deadline, std::future::pending())
            .await?;
        Ok(outcome.unwrap_or(VerifyOutcome::NoFinger))
    }

    /// [`Self::verify_slot`], abandoned (`Ok(None)`) if `abandon` completes
    /// while the module is still waiting for a finger — when the door has
    /// stopped waiting for this person, say, because another card replaced
    /// theirs. Once a finger is captured the verification runs to its end.
    pub async fn verify_slot_unless(
        &mut self,
        slot: u16,
        deadline: Instant,
        abandon: impl Future<Output = ()>,
    ) -> Result<Option<VerifyOutcome>, FingerprintError> {
        let abandon = std::pin::pin!(abandon);
        self.load_template(slot).await?;
        match self.capture_unless(1, deadline, abandon).await? {
            Capture::Image => {}
            Capture::NoFinger => return Ok(Some(VerifyOutcome::NoFinger)),
            Capture::Abandoned => return Ok(None),
        }
        let ack = self.command(Command::Match).await?;
        match ack.code {
            Confirmation::Ok => {
                let score = ack.u16_at(0)?;
                if score >= self.config.match_threshold {
                    Ok(Some(VerifyOutcome::Matched { score }))
                } else {
                    Ok(Some(VerifyOutcome::NoMatch { score }))
                }
            }
            Confirmation::NoMatch => Ok(Some(VerifyOutcome::NoMatch { score: 0 })),
            code => Err(FingerprintError::Rejected {
                command: Command::Match,
                code,
            }),
        }
    }

    /// Loads the template in `slot` into character buffer 2.
    async fn load_template(&mut self, slot: u16) -> Result<(), FingerprintError> {
        let command = Command::LoadChar {
            buffer: 2,
            page: slot,
        };
        let ack = self.command(command).await?;
        match ack.code {
            Confirmation::Ok => Ok(()),
            // The module answered properly: this slot is empty, unreadable or
            // beyond the library. Confirmation 0x0C covers both "empty" and
            // "invalid template"; either way nobody can match it.
            code @ (Confirmation::ReadTemplateError | Confirmation::PageOutOfRange) => {
                Err(FingerprintError::EmptySlot { slot, code })
            }
            code => Err(FingerprintError::Rejected { command, code }),
        }
    }

    /// Enrolls a finger into `slot`: two captures → RegModel → Store.
    /// `Ok(false)` means no usable finger before `deadline`.
    pub async fn enroll_slot(
        &mut self,
        slot: u16,
        deadline: Instant,
    ) -> Result<bool, FingerprintError> {
        if !self.capture(1, deadline).await? || !self.capture(2, deadline).await? {
            return Ok(false);
        }
        self.expect_ok(Command::RegModel).await?;
        self.expect_ok(Command::Store {
            buffer: 1,
            page: slot,
        })
        .await?;
        Ok(true)
    }

    /// The lowest slot that holds no template on the module (read from its
    /// index table) and is not in `taken`; `None` when the library is full.
    pub async fn free_slot(&mut self, taken: &[u16]) -> Result<Option<u16>, FingerprintError> {
        let capacity = self.system_parameters().await?.library_size;
        let mut page: u8 = 0;
        let mut first: u32 = 0;
        while first < u32::from(capacity) {
            let ack = self.expect_ok(Command::ReadIndexTable { page }).await?;
            if ack.data.len() < 32 {
                return Err(FingerprintError::Payload(PayloadError::WrongLength {
                    code: Command::ReadIndexTable { page }.code(),
                    expected: 32,
                    got: ack.data.len(),
                }));
            }
            for offset in 0..256u32 {
                let Ok(slot) = u16::try_from(first + offset) else {
                    return Ok(None);
                };
                if slot >= capacity {
                    return Ok(None);
                }
                let used = ack.data[(offset / 8) as usize] & (1 << (offset % 8)) != 0;
                if !used && !taken.contains(&slot) {
                    return Ok(Some(slot));
                }
            }
            first += 256;
            page = match page.checked_add(1) {
                Some(p) => p,
                None => return Ok(None),
            };
        }
        Ok(None)
    }

    /// Enrolls a finger into the lowest free slot ([`Self::free_slot`]):
    /// two captures → RegModel → Store. The slot is picked before the
    /// captures, so a full module says so without asking for a finger.
    pub async fn enroll_free_slot(
        &mut self,
        taken: &[u16],
        deadline: Instant,
    ) -> Result<EnrollOutcome, FingerprintError> {
        let Some(slot) = self.free_slot(taken).await? else {
            return Ok(EnrollOutcome::Full);
        };
        if !self.capture(1, deadline).await? || !self.capture(2, deadline).await? {
            return Ok(EnrollOutcome::NoFinger);
        }
        let merged = self.command(Command::RegModel).await?;
        match merged.code {
            Confirmation::Ok => {}
            Confirmation::MergeFailed => return Ok(EnrollOutcome::Mismatch),
            code => {
                return Err(FingerprintError::Rejected {
                    command: Command::RegModel,
                    code,
                })
            }
        }
        let store = Command::Store {
            buffer: 1,
            page: slot,
        };
        let stored = self.command(store).await?;
        match stored.code {
            Confirmation::Ok => Ok(EnrollOutcome::Stored { slot }),
            Confirmation::LibraryFull | Confirmation::PageOutOfRange => Ok(EnrollOutcome::Full),
            code => Err(FingerprintError::Rejected {
                command: store,
                code,
            }),
        }
    }

    /// Deletes the template in `slot`.
    pub async fn delete_slot(&mut self, slot: u16) -> Result<(), FingerprintError> {
        self.expect_ok(Command::DeleteChar {
            page: slot,
            count: 1,
        })
        .await
        .map(drop)
    }

    /// Reads the system parameters.
    pub async fn system_parameters(&mut self) -> Result<SystemParameters, FingerprintError> {
        let ack = self.expect_ok(Command::ReadSysPara).await?;
        Ok(SystemParameters::parse(&ack.data)?)
    }

    /// Number of stored templates.
    pub async fn template_count(&mut self) -> Result<u16, FingerprintError> {
        let ack = self.expect_ok(Command::TemplateNum).await?;
        Ok(ack.u16_at(0)?)
    }
}

impl From<FingerprintError> for BiometricError {
    fn from(e: FingerprintError) -> Self {
        match e {
            FingerprintError::EmptySlot { slot, .. } => BiometricError::EmptySlot(slot),
            other => BiometricError::Device(other.to_string()),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Biometric for Ef01Driver<S> {
    async fn verify(
        &mut self,
        slot: u16,
        deadline: Instant,
    ) -> Result<VerifyOutcome, BiometricError> {
        Ok(self.verify_slot(slot, deadline).await?)
    }

    async fn verify_cancellable<C: Future<Output = ()> + Send>(
        &mut self,
        slot: u16,
        deadline: Instant,
        cancel: C,
    ) -> Result<Option<VerifyOutcome>, BiometricError> {
        // The EF01 protocol has no cancel command: the driver stops between
        // two GenImg polls, when the module has answered everything it was asked.
        Ok(self.verify_slot_unless(slot, deadline, cancel).await?)
    }

    async fn enroll(&mut self, slot: u16, deadline: Instant) -> Result<bool, BiometricError> {
        Ok(self.enroll_slot(slot, deadline).await?)
    }

    async fn delete(&mut self, slot: u16) -> Result<(), BiometricError> {
        Ok(self.delete_slot(slot).await?)
    }

    async fn info(&mut self) -> Result<BiometricInfo, BiometricError> {
        let params = self.system_parameters().await?;
        let enrolled = self.template_count().await?;
        Ok(BiometricInfo {
            kind: "ef01-fingerprint".to_owned(),
            capacity: params.library_size,
            enrolled,
            detail: serde_json::to_value(params).unwrap_or_default(),
        })
    }
}
