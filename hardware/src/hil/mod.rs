//! The hardware-in-the-loop kit's shared pieces: a private `pcscd` for virtual card readers.
//!
//! The simulators themselves live next to the drivers they imitate
//! ([`crate::card::vicc`], [`crate::fingerprint::sim`], [`crate::gpio::virtual_board`])
//! so that each wire protocol has one home.

pub mod pcscd;

pub use pcscd::{PcscdError, PrivatePcscd, VirtualReaderSlot};
