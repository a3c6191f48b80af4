//! Signed checkpoints of a hash chain: the canonical text central signs, and its check.
//!
//! A checkpoint says "chain C had N records, and record N's link was H, at time T".
//! Central signs the canonical text below with its signing key (the same key
//! that signs policy); anyone holding the public key can check a copy of it,
//! e.g. one forwarded to a SIEM.
//!
//! Canonical text (UTF-8, `\n` after every line, no other whitespace):
//!
//! ```text
//! tobira-checkpoint-v1
//! chain=admin_audit
//! count=42
//! head=<64 lowercase hex digits>
//! at=<milliseconds since the Unix epoch>
//! ```
//!
//! The first line separates it from policy envelopes (JSON, which never start
//! with it), so a checkpoint signature can never pass as a policy signature.

use crate::signed_text::{is_chain_name, is_hex64};
use crate::{PolicyKey, PolicySigner, ProtocolError};

/// The first line of every checkpoint text.
pub const CHECKPOINT_TAG: &str = "tobira-checkpoint-v1";

/// What a checkpoint claims about a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointClaim {
    /// The chain: `admin_audit` or `controller:ID` (letters, digits, `_`, `:`, `-`).
    pub chain: String,
    /// The sequence number of the head record: records 1 to `count` existed.
    pub count: u64,
    /// The head record's link (64 lowercase hex digits).
    pub head: String,
    /// When the checkpoint was made (ms since the Unix epoch).
    pub at: i64,
}

impl CheckpointClaim {
    /// The exact text that is signed; refuses fields that could blur its lines.
    pub fn canonical_text(&self) -> Result<String, ProtocolError> {
        if !is_chain_name(&self.chain) {
            return Err(ProtocolError::Checkpoint(format!(
                "chain name {:?} is not valid",
                self.chain
            )));
        }
        if !is_hex64(&self.head) {
            return Err(ProtocolError::Checkpoint(
                "head is not 64 lowercase hex digits".into(),
            ));
        }
        Ok(format!(
            "{CHECKPOINT_TAG}\nchain={}\ncount={}\nhead={}\nat={}\n",
            self.chain, self.count, self.head, self.at
        ))
    }
}

impl PolicySigner {
    /// Signs a checkpoint's canonical text; the signature as hex.
    pub fn sign_checkpoint(&self, claim: &CheckpointClaim) -> Result<String, ProtocolError> {
        Ok(self.sign_text(&claim.canonical_text()?))
    }
}

impl PolicyKey {
    /// Checks a checkpoint signature (hex) over the claim's canonical text.
    pub fn verify_checkpoint(
        &self,
        claim: &CheckpointClaim,
        signature: &str,
    ) -> Result<(), ProtocolError> {
        self.verify_text(&claim.canonical_text()?, signature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claim() -> CheckpointClaim {
        CheckpointClaim {
            chain: "controller:7".into(),
            count: 42,
            head: "ab".repeat(32),
            at: 1_764_000_000_000,
        }
    }

    #[test]
    fn the_canonical_text_is_the_documented_one() {
        assert_eq!(
            claim().canonical_text().unwrap(),
            format!(
                "tobira-checkpoint-v1\nchain=controller:7\ncount=42\nhead={}\nat=1764000000000\n",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn a_signature_holds_for_its_claim_only() {
        let signer = PolicySigner::generate();
        let sig = signer.sign_checkpoint(&claim()).unwrap();
        let key = signer.public_key();
        key.verify_checkpoint(&claim(), &sig).unwrap();
        let mut moved = claim();
        moved.count = 41;
        assert!(matches!(
            key.verify_checkpoint(&moved, &sig),
            Err(ProtocolError::BadSignature)
        ));
        assert!(matches!(
            PolicySigner::generate()
                .public_key()
                .verify_checkpoint(&claim(), &sig),
            Err(ProtocolError::BadSignature)
        ));
        assert!(matches!(
            key.verify_checkpoint(&claim(), "zz"),
            Err(ProtocolError::MalformedSignature)
        ));
    }

    #[test]
    fn names_that_could_blur_the_lines_are_refused() {
        let mut bad = claim();
        bad.chain = "admin_audit\ncount=1".into();
        assert!(bad.canonical_text().is_err());
        let mut bad = claim();
        bad.head = "AB".repeat(32);
        assert!(bad.canonical_text().is_err());
    }
}
