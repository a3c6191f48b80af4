//! Signing and checking the canonical texts of checkpoints and archive
//! manifests, and the field rules that keep their lines unambiguous.

use ed25519_dalek::{Signature, Signer as _, Verifier as _};

use crate::{PolicyKey, PolicySigner, ProtocolError};

/// A chain name fits on its line: 1 to 100 of letters, digits, `_`, `:`, `-`, `@`.
pub(crate) fn is_chain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'@'))
}

/// A link or digest as stored: 64 lowercase hex digits.
pub(crate) fn is_hex64(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl PolicySigner {
    /// Signs a canonical text; the signature as hex.
    pub(crate) fn sign_text(&self, text: &str) -> String {
        hex::encode(self.key.sign(text.as_bytes()).to_bytes())
    }
}

impl PolicyKey {
    /// Checks a signature (hex) over a canonical text.
    pub(crate) fn verify_text(&self, text: &str, signature: &str) -> Result<(), ProtocolError> {
        let bytes: [u8; 64] = hex::decode(signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(ProtocolError::MalformedSignature)?;
        self.key
            .verify(text.as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| ProtocolError::BadSignature)
    }
}
