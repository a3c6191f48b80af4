//! The sync protocol between door controllers and the central service.
//!
//! Controllers authenticate with `Authorization: Bearer <controller id>.<secret>`.
//! Policy travels in a [`SignedPolicy`] envelope: the JSON text of a
//! [`PolicyMessage`] and an Ed25519 signature over exactly those bytes, so the
//! controller verifies before it parses anything else.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
pub mod checkpoint;

pub use checkpoint::{CheckpointClaim, CHECKPOINT_TAG};

use tobira_firmware::{
    ControllerId, ModuleId, PersonId, SealedEvent, SnapshotData, SnapshotDelta, Timestamp, ZoneId,
};

/// Where the sync API lives on the central service.
pub const SYNC_PREFIX: &str = "/sync/v1";
/// `GET`: the full signed snapshot for the calling controller.
pub const SNAPSHOT_PATH: &str = "/sync/v1/snapshot";
/// `GET ?since=V`: a signed delta from version V, or 409 when a full snapshot is needed.
pub const DELTA_PATH: &str = "/sync/v1/delta";
/// `GET ?since=V&wait_ms=N`: long-poll; answers as soon as the policy moves past V.
pub const WATCH_PATH: &str = "/sync/v1/watch";
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
}

impl PolicyMessage {
    /// The controller the message is addressed to.
    pub fn controller(&self) -> ControllerId {
        match self {
            Self::Snapshot { controller, .. } | Self::Delta { controller, .. } => *controller,
        }
    }

    /// The policy version the message brings the controller to.
    pub fn version(&self) -> u64 {
        match self {
            Self::Snapshot { snapshot, .. } => snapshot.version,
            Self::Delta { delta, .. } => delta.to,
        }
    }
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
}

/// Answer to a delta request when no delta can be built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotNeeded {
    /// The current version.
    pub version: u64,
    /// Why (too far behind, structural change).
    pub reason: String,
}

/// Answer to a long-poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchAnswer {
    /// The current policy version.
    pub version: u64,
    /// Whether a change since the caller's version must apply at once (lost card, threat level).
    pub urgent: bool,
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
    /// The events.
    pub events: Vec<SealedEvent>,
}

/// The central service's receipt for a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventReceipt {
    /// Every event of this controller up to this sequence number is stored;
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
