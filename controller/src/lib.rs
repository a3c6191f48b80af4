//! The door-controller daemon: wires card readers, biometric modules and pins to the door brain.
//!
//! It decides locally from its cached policy and never waits on the network
//! for a decision. Every event is committed to the SQLite outbox before the
//! door acts on it; the sync client ships events to the central service and
//! pulls signed policy updates. See `docs/controller.md`.

pub mod clock;
pub mod config;
pub mod daemon;
pub mod devices;
pub mod doors;
pub mod engine;
pub mod identifiers;
pub mod memory;
pub mod outbox;
pub mod pins;
pub mod policy;
pub mod state;
pub mod status;
pub mod sync;
