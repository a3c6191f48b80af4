//! The sync protocol between door controllers and the central service.
//!
//! Controllers authenticate with `Authorization: Bearer <controller id>.<secret>`.
//! Policy travels in a [`SignedPolicy`] envelope: the JSON text of a
//! [`PolicyMessage`] and an Ed25519 signature over exactly those bytes, so the
//! controller verifies before it parses anything else.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
pub mod archive;
pub mod checkpoint;
mod signed_text;

pub use archive::{ArchiveManifest, ARCHIVE_TAG};
pub use checkpoint::{CheckpointClaim, CHECKPOINT_TAG};

use tobira_firmware::{
    ChainEpoch, ControllerId, ModuleId, PersonId, SealedEvent, SnapshotData, SnapshotDelta,
    Timestamp, ZoneId,
};

/// Where the sync API lives on the central service.
pub const SYNC_PREFIX: &str = "/sync/v1";
/// `GET ?nonce=N`: the full signed snapshot for the calling controller.
pub const SNAPSHOT_PATH: &str = "/sync/v1/snapshot";
/// `GET ?since=V&nonce=N`: a signed delta from version V, a signed
/// [`PolicyMessage::Current`] when V is current, or 409 when a full snapshot is needed.
pub const DELTA_PATH: &str = "/sync/v1/delta";
/// `GET ?since=V&wait_ms=N&nonce=N`: long-poll; answers (signed
/// [`PolicyMessage::Watch`]) as soon as the policy moves past V, or when the wait ends.
pub const WATCH_PATH: &str = "/sync/v1/watch";
/// The query parameter that carries the controller's nonce on snapshot,
/// delta and watch calls; the signed answer repeats it.
pub const NONCE_PARAM: &str = "nonce";
/// Hex digits of the nonce a controller makes (128 random bits).
pub const NONCE_HEX_LEN: usize = 32;
/// `POST`: a batch of sealed events, in order.
pub const EVENTS_PATH: &str = "/sync/v1/events";
/// `GET ?after=CURSOR`: passages other controllers recorded in this
/// controller's zones, so occupancy (hard anti-passback) holds across
/// controllers that share a zone.
pub const PASSAGES_PATH: &str = "/sync/v1/passages";
/// Most passages in one answer.
pub const MAX_PASSAGES: usize = 500;

/// `GET ?wait_ms=N`: the calling controller's pending enrollment jobs; held
/// open until one is queued or the wait ends (then an empty list).
pub const ENROLLMENT_JOBS_PATH: &str = "/sync/v1/enrollment-jobs";
/// `POST` to `ENROLLMENT_JOBS_PATH/{id}`: the [`EnrollmentOutcome`] of one job.
pub fn enrollment_job_path(id: u64) -> String {
    format!("{ENROLLMENT_JOBS_PATH}/{id}")
}

/// Most events accepted in one batch.
pub const MAX_BATCH: usize = 1000;

/// What a signed policy envelope carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyMessage {
    /// A whole snapshot.
    Snapshot {
        /// The controller it was built for; others must refuse it.
        controller: ControllerId,
        /// The snapshot.
        snapshot: SnapshotData,
    },
    /// Changes since a version.
    Delta {
        /// The controller it was built for.
        controller: ControllerId,
        /// The changes.
        delta: SnapshotDelta,
    },
    /// A whole snapshot, answering the request that carried `nonce`.
    FreshSnapshot {
        /// The controller it was built for; others must refuse it.
        controller: ControllerId,
        /// The snapshot.
        snapshot: SnapshotData,
        /// The nonce of the request this answers.
        nonce: String,
        /// The central service's clock when it signed.
        central_time: Timestamp,
    },
    /// Changes since a version, answering the request that carried `nonce`.
    FreshDelta {
        /// The controller it was built for.
        controller: ControllerId,
        /// The changes.
        delta: SnapshotDelta,
        /// The nonce of the request this answers.
        nonce: String,
        /// The central service's clock when it signed.
        central_time: Timestamp,
    },
    /// The controller's version is the current one: the signed "up to date"
    /// that alone lets a controller reset its policy age.
    Current {
        /// The controller asking.
        controller: ControllerId,
        /// The version it holds, which is current.
        version: u64,
        /// The nonce of the request this answers.
        nonce: String,
        /// The central service's clock when it signed.
        central_time: Timestamp,
    },
    /// The answer to a long-poll: `version == since` confirms the caller's
    /// version; another version tells it to pull.
    Watch {
        /// The controller asking.
        controller: ControllerId,
        /// The version the caller said it holds.
        since: u64,
        /// The central service's current version.
        version: u64,
        /// Whether a change since `since` must apply at once (lost card, threat level).
        urgent: bool,
        /// The nonce of the request this answers.
        nonce: String,
        /// The central service's clock when it signed.
        central_time: Timestamp,
    },
}

impl PolicyMessage {
    /// The controller the message is addressed to.
    pub fn controller(&self) -> ControllerId {
        match self {
            Self::Snapshot { controller, .. }
            | Self::Delta { controller, .. }
            | Self::FreshSnapshot { controller, .. }
            | Self::FreshDelta { controller, .. }
            | Self::Current { controller, .. }
            | Self::Watch { controller, .. } => *controller,
        }
    }

    /// The policy version the message brings the controller to (or, for
    /// [`Self::Current`] and [`Self::Watch`], the version central has).
    pub fn version(&self) -> u64 {
        match self {
            Self::Snapshot { snapshot, .. } | Self::FreshSnapshot { snapshot, .. } => {
                snapshot.version
            }
            Self::Delta { delta, .. } | Self::FreshDelta { delta, .. } => delta.to,
            Self::Current { version, .. } | Self::Watch { version, .. } => *version,
        }
    }

    /// The nonce of the request the message answers (`None`: a message not
    /// bound to any request, which confirms nothing).
    pub fn nonce(&self) -> Option<&str> {
        match self {
            Self::Snapshot { .. } | Self::Delta { .. } => None,
            Self::FreshSnapshot { nonce, .. }
            | Self::FreshDelta { nonce, .. }
            | Self::Current { nonce, .. }
            | Self::Watch { nonce, .. } => Some(nonce),
        }
    }

    /// The central service's clock when it signed, when the message says.
    pub fn central_time(&self) -> Option<Timestamp> {
        match self {
            Self::Snapshot { .. } | Self::Delta { .. } => None,
            Self::FreshSnapshot { central_time, .. }
            | Self::FreshDelta { central_time, .. }
            | Self::Current { central_time, .. }
            | Self::Watch { central_time, .. } => Some(*central_time),
        }
    }
}

/// A fresh random nonce: 128 bits as [`NONCE_HEX_LEN`] lowercase hex digits.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; NONCE_HEX_LEN / 2]>())
}

/// Whether `nonce` is one the central service accepts: 32 to 128 hex digits
/// (enough randomness, and short enough to sign and log).
pub fn nonce_is_valid(nonce: &str) -> bool {
    (NONCE_HEX_LEN..=4 * NONCE_HEX_LEN).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a controller expects of an answer to the request it just sent.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// This controller.
    pub controller: ControllerId,
    /// The nonce it sent with the request.
    pub nonce: &'a str,
    /// The version in force here: nothing older is accepted.
    pub held: u64,
}

/// A policy message and its Ed25519 signature (hex) over the exact `payload` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedPolicy {
    /// JSON text of a [`PolicyMessage`].
    pub payload: String,
    /// Hex Ed25519 signature of `payload`'s UTF-8 bytes.
    pub signature: String,
}

/// Why a message was refused or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The signature does not verify with the configured central key.
    #[error("policy signature does not verify with the central public key")]
    BadSignature,
    /// The signature is not 64 hex-encoded bytes.
    #[error("policy signature is malformed")]
    MalformedSignature,
    /// The message is for another controller.
    #[error("policy is for controller {found}, this is controller {expected}")]
    WrongController {
        /// This controller.
        expected: ControllerId,
        /// The one in the message.
        found: ControllerId,
    },
    /// The payload is not a policy message.
    #[error("policy payload is not valid: {0}")]
    Payload(#[from] serde_json::Error),
    /// A key could not be read.
    #[error("key is not valid: {0}")]
    Key(String),
    /// A checkpoint claim that cannot be put into its canonical text.
    #[error("checkpoint is not valid: {0}")]
    Checkpoint(String),
    /// An archive manifest that cannot be put into its canonical text.
    #[error("archive manifest is not valid: {0}")]
    Archive(String),
    /// The message is signed but does not answer the request just sent: a
    /// replayed answer (or one not bound to any request).
    #[error(
        "policy answer is not for this request (nonce {found:?}, sent {expected:?}): a replay"
    )]
    WrongNonce {
        /// The nonce this controller sent.
        expected: String,
        /// The nonce in the message (`None`: the message carries none).
        found: Option<String>,
    },
    /// The message would take the policy back to an older version.
    #[error("version {offered} is older than version {held} in force")]
    Downgrade {
        /// The version in force.
        held: u64,
        /// The version the message brings.
        offered: u64,
    },
}

/// The central service's signing key.
#[derive(Debug)]
pub struct PolicySigner {
    key: SigningKey,
}

impl PolicySigner {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// A key from its 32 secret bytes (hex).
    pub fn from_hex(secret: &str) -> Result<Self, ProtocolError> {
        let bytes: [u8; 32] = hex::decode(secret.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ProtocolError::Key("expected 64 hex digits".into()))?;
        Ok(Self {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// The secret bytes as hex, for the key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The public key controllers are configured with.
    pub fn public_key(&self) -> PolicyKey {
        PolicyKey {
            key: self.key.verifying_key(),
        }
    }

    /// Serialises and signs a message.
    pub fn sign(&self, message: &PolicyMessage) -> Result<SignedPolicy, ProtocolError> {
        let payload = serde_json::to_string(message)?;
        let signature = self.key.sign(payload.as_bytes());
        Ok(SignedPolicy {
            payload,
            signature: hex::encode(signature.to_bytes()),
        })
    }
}

/// The central service's public key, as a controller holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyKey {
    key: VerifyingKey,
}

impl PolicyKey {
    /// A key from its 32 bytes (hex), as printed by `tobira central controller add`.
    pub fn from_hex(public: &str) -> Result<Self, ProtocolError> {
        let bytes: [u8; 32] = hex::decode(public.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ProtocolError::Key("expected 64 hex digits".into()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(|key| Self { key })
            .map_err(|e| ProtocolError::Key(e.to_string()))
    }

    /// The key as hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// Verifies the signature over the payload bytes, then parses, then checks
    /// the message is addressed to `controller`.
    pub fn open(
        &self,
        envelope: &SignedPolicy,
        controller: ControllerId,
    ) -> Result<PolicyMessage, ProtocolError> {
        let bytes: [u8; 64] = hex::decode(&envelope.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ProtocolError::MalformedSignature)?;
        let signature = Signature::from_bytes(&bytes);
        self.key
            .verify(envelope.payload.as_bytes(), &signature)
            .map_err(|_| ProtocolError::BadSignature)?;
        let message: PolicyMessage = serde_json::from_str(&envelope.payload)?;
        if message.controller() != controller {
            return Err(ProtocolError::WrongController {
                expected: controller,
                found: message.controller(),
            });
        }
        Ok(message)
    }

    /// [`Self::open`], then checks the message answers the request that
    /// carried `expected.nonce` and brings no version older than the one in
    /// force. Only a message that passes may confirm or change policy.
    pub fn open_fresh(
        &self,
        envelope: &SignedPolicy,
        expected: Expected<'_>,
    ) -> Result<PolicyMessage, ProtocolError> {
        let message = self.open(envelope, expected.controller)?;
        if message.nonce() != Some(expected.nonce) {
            return Err(ProtocolError::WrongNonce {
                expected: expected.nonce.to_owned(),
                found: message.nonce().map(str::to_owned),
            });
        }
        if message.version() < expected.held {
            return Err(ProtocolError::Downgrade {
                held: expected.held,
                offered: message.version(),
            });
        }
        Ok(message)
    }
}

/// Answer to a delta request when no delta can be built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotNeeded {
    /// The current version.
    pub version: u64,
    /// Why (too far behind, structural change).
    pub reason: String,
}

/// Enrollment jobs waiting for the calling controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentJobs {
    /// Oldest first.
    pub jobs: Vec<EnrollmentJob>,
}

/// One thing to do on a biometric module the controller drives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentJob {
    /// The job's id at the central service.
    pub id: u64,
    /// The module.
    pub module: ModuleId,
    /// What to do.
    pub task: EnrollmentTask,
}

/// Enroll a finger into a free slot, or clear a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnrollmentTask {
    /// Capture the person's finger twice and store it in a free slot.
    Enroll {
        /// Whose finger.
        person: PersonId,
        /// Slots the central service has recorded for this module: not free
        /// even if the module's flash says so.
        taken: Vec<u16>,
    },
    /// Erase the template in `slot`.
    Delete {
        /// The slot.
        slot: u16,
    },
}

/// How a job ended, as the controller reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnrollmentOutcome {
    /// The finger's template is stored in `slot`.
    Enrolled {
        /// The slot the controller picked.
        slot: u16,
    },
    /// The slot is clear.
    Deleted,
    /// Nothing was stored or cleared.
    Failed {
        /// Why.
        reason: EnrollmentFailure,
        /// Details for the log (never a secret).
        detail: String,
    },
}

/// Why an enrollment job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentFailure {
    /// No usable finger before the deadline.
    Timeout,
    /// The two captures were not of the same finger.
    Mismatch,
    /// No free slot on the module.
    ModuleFull,
    /// The module did not answer or failed.
    ModuleUnavailable,
    /// This controller drives no module with that id.
    UnknownModule,
}

impl EnrollmentFailure {
    /// The snake_case word (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Mismatch => "mismatch",
            Self::ModuleFull => "module_full",
            Self::ModuleUnavailable => "module_unavailable",
            Self::UnknownModule => "unknown_module",
        }
    }
}

/// A batch of events from one controller, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// The chain epoch every event of the batch belongs to (absent: the
    /// first, for boards whose state predates epochs).
    #[serde(default)]
    pub epoch: ChainEpoch,
    /// The events.
    pub events: Vec<SealedEvent>,
}

/// The central service's receipt for a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventReceipt {
    /// The chain epoch the receipt is for: the batch's.
    #[serde(default)]
    pub epoch: ChainEpoch,
    /// Every event of this controller's epoch up to this sequence number is stored;
    /// the controller may delete them from its outbox.
    pub stored_through: u64,
    /// Events in the batch that were newly stored.
    pub stored: u64,
    /// Events in the batch that were already stored (a retry).
    pub duplicates: u64,
    /// A break in the hash chain, if one was found (it was recorded as an alarm).
    pub chain_break: Option<String>,
    /// Sequence numbers of this batch that central already holds with other
    /// content. `stored_through` stays below the first of them: the
    /// controller keeps its copies and raises an alarm.
    #[serde(default)]
    pub conflict: Vec<u64>,
}

/// A passage another controller recorded: after it, `person` is inside
/// `zone` (an entry) or not (an exit). The receiver keeps it only if it is
/// newer than what it knows of that person in that zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedPassage {
    /// The zone.
    pub zone: ZoneId,
    /// Who.
    pub person: PersonId,
    /// Inside the zone after the passage.
    pub inside: bool,
    /// When it happened (the recording controller's clock).
    pub at: Timestamp,
}

/// Answer to a passages request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassageFeed {
    /// Passages in the order the central service received them. Without a
    /// cursor: the latest passage of each person in each of the zones.
    pub passages: Vec<SharedPassage>,
    /// The cursor for the next request.
    pub next: String,
    /// Whether more are waiting (ask again at once).
    pub more: bool,
}

/// The `Authorization` header value for a controller.
pub fn controller_authorization(controller: ControllerId, secret: &str) -> String {
    format!("Bearer {}.{}", controller.0, secret)
}

/// Splits a controller bearer token into id and secret.
pub fn parse_controller_token(token: &str) -> Option<(ControllerId, &str)> {
    let (id, secret) = token.split_once('.')?;
    let id = id.parse().ok()?;
    (!secret.is_empty()).then_some((ControllerId(id), secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tobira_firmware::Timestamp;

    fn message(controller: u32) -> PolicyMessage {
        PolicyMessage::Snapshot {
            controller: ControllerId(controller),
            snapshot: SnapshotData {
                version: 3,
                issued_at: Timestamp(1),
                time_zone: None,
                ..SnapshotData::default()
            },
        }
    }

    #[test]
    fn a_signed_policy_opens_only_with_the_right_key_for_the_right_controller() {
        let signer = PolicySigner::generate();
        let key = PolicyKey::from_hex(&signer.public_key().to_hex()).unwrap();
        let envelope = signer.sign(&message(4)).unwrap();
        assert_eq!(key.open(&envelope, ControllerId(4)).unwrap(), message(4));
        assert!(matches!(
            key.open(&envelope, ControllerId(5)),
            Err(ProtocolError::WrongController { .. })
        ));
        let other = PolicySigner::generate().public_key();
        assert!(matches!(
            other.open(&envelope, ControllerId(4)),
            Err(ProtocolError::BadSignature)
        ));
    }

    #[test]
    fn any_change_to_the_payload_or_signature_is_refused() {
        let signer = PolicySigner::generate();
        let key = signer.public_key();
        let envelope = signer.sign(&message(4)).unwrap();
        let mut tampered = envelope.clone();
        tampered.payload = tampered.payload.replace("\"version\":3", "\"version\":4");
        assert_ne!(tampered.payload, envelope.payload);
        assert!(matches!(
            key.open(&tampered, ControllerId(4)),
            Err(ProtocolError::BadSignature)
        ));
        let mut bad_sig = envelope.clone();
        bad_sig.signature = "00".repeat(64);
        assert!(matches!(
            key.open(&bad_sig, ControllerId(4)),
            Err(ProtocolError::BadSignature)
        ));
        let mut short = envelope;
        short.signature = "abc".into();
        assert!(matches!(
            key.open(&short, ControllerId(4)),
            Err(ProtocolError::MalformedSignature)
        ));
    }

    fn current(controller: u32, version: u64, nonce: &str) -> PolicyMessage {
        PolicyMessage::Current {
            controller: ControllerId(controller),
            version,
            nonce: nonce.into(),
            central_time: Timestamp(7),
        }
    }

    fn expected(nonce: &str, held: u64) -> Expected<'_> {
        Expected {
            controller: ControllerId(4),
            nonce,
            held,
        }
    }

    #[test]
    fn a_fresh_answer_opens_only_for_the_request_that_carried_its_nonce() {
        let signer = PolicySigner::generate();
        let key = signer.public_key();
        let (sent, other) = (new_nonce(), new_nonce());
        assert_ne!(sent, other, "nonces repeat");
        let envelope = signer.sign(&current(4, 3, &sent)).unwrap();
        assert_eq!(
            key.open_fresh(&envelope, expected(&sent, 3)).unwrap(),
            current(4, 3, &sent)
        );
        // The same signed answer replayed to a later request is refused.
        assert!(matches!(
            key.open_fresh(&envelope, expected(&other, 3)),
            Err(ProtocolError::WrongNonce { found: Some(f), .. }) if f == sent
        ));
        // A message bound to no request (a policy file's snapshot) confirms nothing.
        let unbound = signer.sign(&message(4)).unwrap();
        assert!(matches!(
            key.open_fresh(&unbound, expected(&sent, 0)),
            Err(ProtocolError::WrongNonce { found: None, .. })
        ));
    }

    #[test]
    fn a_fresh_answer_for_another_controller_is_refused_before_its_nonce_is_looked_at() {
        let signer = PolicySigner::generate();
        let nonce = new_nonce();
        let envelope = signer.sign(&current(5, 3, &nonce)).unwrap();
        assert!(matches!(
            signer
                .public_key()
                .open_fresh(&envelope, expected(&nonce, 3)),
            Err(ProtocolError::WrongController {
                found: ControllerId(5),
                ..
            })
        ));
        let forged = SignedPolicy {
            payload: serde_json::to_string(&current(4, 3, &nonce)).unwrap(),
            signature: envelope.signature,
        };
        assert!(matches!(
            signer.public_key().open_fresh(&forged, expected(&nonce, 3)),
            Err(ProtocolError::BadSignature)
        ));
    }

    #[test]
    fn a_fresh_answer_older_than_the_version_in_force_is_a_downgrade() {
        let signer = PolicySigner::generate();
        let key = signer.public_key();
        let nonce = new_nonce();
        let snapshot = |version: u64| PolicyMessage::FreshSnapshot {
            controller: ControllerId(4),
            snapshot: SnapshotData {
                version,
                ..SnapshotData::default()
            },
            nonce: nonce.clone(),
            central_time: Timestamp(9),
        };
        let old = signer.sign(&snapshot(2)).unwrap();
        assert!(matches!(
            key.open_fresh(&old, expected(&nonce, 3)),
            Err(ProtocolError::Downgrade {
                held: 3,
                offered: 2
            })
        ));
        let watch = |version: u64| PolicyMessage::Watch {
            controller: ControllerId(4),
            since: 3,
            version,
            urgent: false,
            nonce: nonce.clone(),
            central_time: Timestamp(9),
        };
        assert!(matches!(
            key.open_fresh(&signer.sign(&watch(1)).unwrap(), expected(&nonce, 3)),
            Err(ProtocolError::Downgrade {
                held: 3,
                offered: 1
            })
        ));
        for (message, version) in [(snapshot(3), 3), (snapshot(5), 5), (watch(4), 4)] {
            let opened = key
                .open_fresh(&signer.sign(&message).unwrap(), expected(&nonce, 3))
                .unwrap();
            assert_eq!(opened.version(), version);
            assert_eq!(opened.central_time(), Some(Timestamp(9)));
        }
    }

    #[test]
    fn nonces_are_128_random_bits_and_central_accepts_only_hex_of_a_sane_length() {
        let nonce = new_nonce();
        assert_eq!(nonce.len(), NONCE_HEX_LEN);
        assert!(nonce_is_valid(&nonce));
        assert!(nonce_is_valid(&"ab".repeat(64)));
        assert!(!nonce_is_valid(&"ab".repeat(65)));
        assert!(!nonce_is_valid("00ff"));
        assert!(!nonce_is_valid(&"zz".repeat(16)));
        assert!(!nonce_is_valid(""));
    }

    #[test]
    fn keys_round_trip_as_hex_and_bad_hex_is_an_error() {
        let signer = PolicySigner::generate();
        let again = PolicySigner::from_hex(&signer.to_hex()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        assert!(PolicySigner::from_hex("xyz").is_err());
        assert!(PolicyKey::from_hex("00").is_err());
    }

    #[test]
    fn controller_tokens_parse() {
        let header = controller_authorization(ControllerId(12), "s3cret");
        assert_eq!(header, "Bearer 12.s3cret");
        assert_eq!(
            parse_controller_token("12.s3cret"),
            Some((ControllerId(12), "s3cret"))
        );
        assert_eq!(parse_controller_token("12."), None);
        assert_eq!(parse_controller_token("x.y"), None);
        assert_eq!(parse_controller_token("nodot"), None);
    }
}
