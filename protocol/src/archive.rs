//! Signed archive manifests: the canonical text central signs when retention
//! moves the oldest part of a hash chain out of the database into a file.
//!
//! A manifest says "records `first` to `last` of chain C (`count` rows; the
//! first follows link `prev`, the last has link `link`) are in a file whose
//! content has SHA-256 `sha256`, cut at time `at`". The same signed text is
//! the database's record of the cut, so the cut and its archive vouch for
//! each other.
//!
//! Canonical text (UTF-8, `\n` after every line, no other whitespace):
//!
//! ```text
//! tobira-archive-v1
//! chain=controller:7
//! first=1
//! last=1000
//! count=1000
//! prev=<64 lowercase hex digits>
//! link=<64 lowercase hex digits>
//! sha256=<64 lowercase hex digits>
//! at=<milliseconds since the Unix epoch>
//! ```
//!
//! Its own first line keeps it apart from checkpoints and policy envelopes,
//! so no signature of one can pass as the other.

use serde::{Deserialize, Serialize};

use crate::signed_text::{is_chain_name, is_hex64};
use crate::{PolicyKey, PolicySigner, ProtocolError};

/// The first line of every archive manifest text.
pub const ARCHIVE_TAG: &str = "tobira-archive-v1";

/// What an archive (and the cut that made it) claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveManifest {
    /// The chain: `controller:ID` (letters, digits, `_`, `:`, `-`).
    pub chain: String,
    /// The first archived sequence number.
    pub first: u64,
    /// The last archived sequence number: the chain is cut after it.
    pub last: u64,
    /// Rows in the archive (fewer than `last - first + 1` where ingest
    /// recorded gaps).
    pub count: u64,
    /// The link the first archived record follows (hex).
    pub prev: String,
    /// The last archived record's link (hex): where the stored chain goes on.
    pub link: String,
    /// SHA-256 (hex) of the archive's row lines, every byte before the manifest line.
    pub sha256: String,
    /// When the cut was made (ms since the Unix epoch).
    pub at: i64,
}

impl ArchiveManifest {
    /// The exact text that is signed; refuses fields that could blur its lines.
    pub fn canonical_text(&self) -> Result<String, ProtocolError> {
        if !is_chain_name(&self.chain) {
            return Err(ProtocolError::Archive(format!(
                "chain name {:?} is not valid",
                self.chain
            )));
        }
        for (name, value) in [
            ("prev", &self.prev),
            ("link", &self.link),
            ("sha256", &self.sha256),
        ] {
            if !is_hex64(value) {
                return Err(ProtocolError::Archive(format!(
                    "{name} is not 64 lowercase hex digits"
                )));
            }
        }
        if self.first == 0 || self.last < self.first || self.count == 0 {
            return Err(ProtocolError::Archive(format!(
                "records {} to {} ({} rows) are not a range",
                self.first, self.last, self.count
            )));
        }
        Ok(format!(
            "{ARCHIVE_TAG}\nchain={}\nfirst={}\nlast={}\ncount={}\nprev={}\nlink={}\nsha256={}\nat={}\n",
            self.chain, self.first, self.last, self.count, self.prev, self.link, self.sha256, self.at
        ))
    }
}

impl PolicySigner {
    /// Signs an archive manifest's canonical text; the signature as hex.
    pub fn sign_archive(&self, manifest: &ArchiveManifest) -> Result<String, ProtocolError> {
        Ok(self.sign_text(&manifest.canonical_text()?))
    }
}

impl PolicyKey {
    /// Checks an archive signature (hex) over the manifest's canonical text.
    pub fn verify_archive(
        &self,
        manifest: &ArchiveManifest,
        signature: &str,
    ) -> Result<(), ProtocolError> {
        self.verify_text(&manifest.canonical_text()?, signature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::CheckpointClaim;

    fn manifest() -> ArchiveManifest {
        ArchiveManifest {
            chain: "controller:7".into(),
            first: 1,
            last: 1000,
            count: 998,
            prev: "00".repeat(32),
            link: "ab".repeat(32),
            sha256: "cd".repeat(32),
            at: 1_764_000_000_000,
        }
    }

    #[test]
    fn the_canonical_text_is_the_documented_one() {
        assert_eq!(
            manifest().canonical_text().unwrap(),
            format!(
                "tobira-archive-v1\nchain=controller:7\nfirst=1\nlast=1000\ncount=998\nprev={}\nlink={}\nsha256={}\nat=1764000000000\n",
                "00".repeat(32),
                "ab".repeat(32),
                "cd".repeat(32)
            )
        );
    }

    #[test]
    fn a_signature_holds_for_its_manifest_only() {
        let signer = PolicySigner::generate();
        let sig = signer.sign_archive(&manifest()).unwrap();
        let key = signer.public_key();
        key.verify_archive(&manifest(), &sig).unwrap();
        let mut moved = manifest();
        moved.last = 999;
        assert!(matches!(
            key.verify_archive(&moved, &sig),
            Err(ProtocolError::BadSignature)
        ));
        // A checkpoint signature never passes as an archive signature.
        let claim = CheckpointClaim {
            chain: "controller:7".into(),
            count: 1000,
            head: "ab".repeat(32),
            at: 1_764_000_000_000,
        };
        let cp_sig = signer.sign_checkpoint(&claim).unwrap();
        assert!(key.verify_archive(&manifest(), &cp_sig).is_err());
    }

    #[test]
    fn fields_that_could_blur_the_lines_are_refused() {
        let mut bad = manifest();
        bad.chain = "controller:7\nfirst=2".into();
        assert!(bad.canonical_text().is_err());
        let mut bad = manifest();
        bad.sha256 = "CD".repeat(32);
        assert!(bad.canonical_text().is_err());
        let mut bad = manifest();
        bad.last = 0;
        assert!(bad.canonical_text().is_err());
    }
}
