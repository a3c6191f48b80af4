//! Device layer: drivers and simulators for card readers, fingerprint modules and GPIO.
//!
//! Everything here touches a device or imitates one. The narrow seams the
//! controller programs against are [`fingerprint::Biometric`], [`card::CardReader`]
//! and the `embedded-hal` 1.0 pin traits; the simulators behind `tobira hil`
//! speak the same wire protocols as the real devices so the controller cannot
//! tell them apart.

pub mod card;
pub mod fingerprint;
pub mod gpio;
pub mod hil;
pub mod profile;

/// The `embedded-hal` this crate's pins implement, so users need not match its version.
pub use embedded_hal;
