//! Biometric readers: the `Biometric` seam, the EF01 fingerprint codec, its serial driver and its simulator.

use std::future::Future;

use tokio::time::Instant;

pub mod codec;
pub mod driver;
pub mod sim;

pub use driver::{DriverConfig, Ef01Driver, EnrollOutcome, FingerprintError};
pub use sim::{Presentation, SimConfig, VirtualFingerprintModule};

/// The result of a 1:1 verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// The presented finger matches the template in the slot.
    Matched {
        /// The module's similarity score.
        score: u16,
    },
    /// A finger was presented and does not match (score below threshold).
    NoMatch {
        /// The module's similarity score (0 when the module reports no match).
        score: u16,
    },
    /// No usable finger was presented before the deadline.
    NoFinger,
}

/// What a biometric reader says about itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BiometricInfo {
    /// Reader family, e.g. `ef01-fingerprint`.
    pub kind: String,
    /// Number of template slots.
    pub capacity: u16,
    /// Number of slots in use.
    pub enrolled: u16,
    /// Device-specific parameters.
    pub detail: serde_json::Value,
}

/// Errors a biometric reader reports to the controller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BiometricError {
    /// The slot holds no template: nobody can match it.
    #[error("template slot {0} is empty")]
    EmptySlot(u16),
    /// The device failed or could not be reached.
    #[error("biometric device: {0}")]
    Device(String),
}

/// A biometric reader holding templates in numbered slots.
///
/// Verification is 1:1 by design: the card says whose template to compare
/// against, so a reader never searches its whole library for card + biometric.
pub trait Biometric {
    /// Waits for a finger until `deadline` and compares it with `slot`.
    fn verify(
        &mut self,
        slot: u16,
        deadline: Instant,
    ) -> impl Future<Output = Result<VerifyOutcome, BiometricError>> + Send;

    /// [`Self::verify`] that can be cancelled: once `cancel` completes while
    /// the reader is still waiting for a finger, it stops waiting and answers
    /// `Ok(None)`, leaving the reader ready for the next command. A finger
    /// already captured is compared to the end (a few hundred ms), so the
    /// answer is never cut off mid-exchange with the device.
    fn verify_cancellable<C: Future<Output = ()> + Send>(
        &mut self,
        slot: u16,
        deadline: Instant,
        cancel: C,
    ) -> impl Future<Output = Result<Option<VerifyOutcome>, BiometricError>> + Send;

    /// Captures a finger (twice) and stores its template in `slot`.
    /// `Ok(false)` means no usable finger before `deadline`.
    fn enroll(
        &mut self,
        slot: u16,
        deadline: Instant,
    ) -> impl Future<Output = Result<bool, BiometricError>> + Send;

    /// Erases the template in `slot`.
    fn delete(&mut self, slot: u16) -> impl Future<Output = Result<(), BiometricError>> + Send;

    /// Capacity and usage of the reader.
    fn info(&mut self) -> impl Future<Output = Result<BiometricInfo, BiometricError>> + Send;
}
