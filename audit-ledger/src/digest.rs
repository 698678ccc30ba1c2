//! SHA-256 digests and the two hash functions of the ledger.

use std::fmt;

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

/// The chain value before the first entry: 32 zero bytes.
pub const GENESIS: Sha256Digest = Sha256Digest([0; 32]);

/// RFC 6962 leaf hash: `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Sha256Digest {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    Sha256Digest(h.finalize().into())
}

/// The next chain value: `SHA-256(previous || leaf_hash)`.
pub fn chain_hash(previous: &Sha256Digest, leaf_hash: &Sha256Digest) -> Sha256Digest {
    let mut h = Sha256::new();
    h.update(previous.0);
    h.update(leaf_hash.0);
    Sha256Digest(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_leaf_hash_is_the_rfc_6962_value() {
        // RFC 6962 test vector: the hash of the empty leaf.
        assert_eq!(
            leaf_hash(b"").to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn the_chain_depends_on_order() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let ab = chain_hash(&chain_hash(&GENESIS, &a), &b);
        let ba = chain_hash(&chain_hash(&GENESIS, &b), &a);
        assert_ne!(ab, ba);
    }
}
