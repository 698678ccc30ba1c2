//! Signed checkpoints: the C2SP `tlog-checkpoint` body (origin, tree size, root hash)
//! plus the hash-chain head as an extension line, in a C2SP `signed-note` with an
//! Ed25519 signature. Key strings follow the signed-note `vkey` format, so standard
//! note tooling can verify SPR checkpoints.
//!
//! ```text
//! spr-timeline.example/audit-ledger
//! 42
//! <base64 root hash>
//! chain-head <base64 chain value after entry 41>
//!
//! — spr-timeline.example/audit-ledger <base64(key id || signature)>
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;

/// The signed-note algorithm byte for Ed25519.
const ED25519_ALGORITHM: u8 = 0x01;
/// Prefix of the extension line carrying the hash-chain head.
const CHAIN_HEAD_PREFIX: &str = "chain-head ";

/// Why a checkpoint or key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a checkpoint in the expected format.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// A key string is not a valid signed-note key.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// No signature line from the trusted key.
    #[error("the checkpoint carries no signature from key {0}")]
    NotSignedByKey(String),
    /// The trusted key's signature does not verify.
    #[error("the signature of key {0} does not verify: the checkpoint was altered or signed by another key")]
    BadSignature(String),
}

/// A statement of the ledger's state at one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint<'a> {
    /// The log's origin line (its name).
    pub origin: &'a str,
    /// Number of entries.
    pub size: u64,
    /// RFC 6962 tree head of those entries.
    pub root: Sha256Digest,
    /// Hash-chain value after the last of them.
    pub chain_head: Sha256Digest,
}

/// A checkpoint read back from signed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// Tree head.
    pub root: Sha256Digest,
    /// Hash-chain head.
    pub chain_head: Sha256Digest,
}

impl Checkpoint<'_> {
    /// The note body: origin, size, root, and the chain-head extension line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{CHAIN_HEAD_PREFIX}{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.0),
            STANDARD.encode(self.chain_head.0)
        )
    }
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_ALGORITHM]);
    h.update(public);
    h.finalize()[..4].try_into().expect("4 bytes")
}

fn check_name(name: &str) -> Result<(), CheckpointError> {
    if name.is_empty() || name.contains(['+', ' ', '\n']) {
        return Err(CheckpointError::MalformedKey(format!(
            "key name {name:?} must be non-empty, without '+', spaces or newlines"
        )));
    }
    Ok(())
}

/// Signs checkpoints with an Ed25519 key.
pub struct CheckpointSigner {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A fresh key named `name` (by convention, the log's origin).
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        })
    }

    /// Parses a signed-note private key: `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
    pub fn from_private_key(text: &str) -> Result<Self, CheckpointError> {
        let bad = |why: &str| CheckpointError::MalformedKey(why.to_owned());
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("a private key starts PRIVATE+KEY+"))?;
        let (name, id, key) = split_key(rest)?;
        let seed: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 seed is 32 bytes"))?;
        let signer = Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        };
        if key_id(name, signer.key.verifying_key().as_bytes()) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The key's name (by convention, the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The private key in signed-note form (keep it secret).
    pub fn private_key(&self) -> String {
        format!("PRIVATE+KEY+{}", self.key_string(self.key.as_bytes()))
    }

    /// The verifier key in signed-note form, for auditors: `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        self.key_string(self.key.verifying_key().as_bytes())
    }

    fn key_string(&self, material: &[u8; 32]) -> String {
        let id = key_id(&self.name, self.key.verifying_key().as_bytes());
        let mut encoded = vec![ED25519_ALGORITHM];
        encoded.extend_from_slice(material);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(id),
            STANDARD.encode(encoded)
        )
    }

    /// The signed note of `checkpoint`.
    pub fn sign(&self, checkpoint: &Checkpoint<'_>) -> String {
        let body = checkpoint.body();
        let signature = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, self.key.verifying_key().as_bytes()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{body}\n\u{2014} {} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// Splits `<name>+<hex id>+<base64(0x01 || key)>` into its parts.
fn split_key(text: &str) -> Result<(&str, [u8; 4], Vec<u8>), CheckpointError> {
    let bad = |why: &str| CheckpointError::MalformedKey(why.to_owned());
    let mut parts = text.splitn(3, '+');
    let (name, id, key) = match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(i), Some(k)) => (n, i, k),
        _ => return Err(bad("expected <name>+<key id>+<key>")),
    };
    check_name(name)?;
    let id: [u8; 4] = hex::decode(id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("the key id is 8 hex digits"))?;
    let key = STANDARD
        .decode(key)
        .map_err(|_| bad("the key is not base64"))?;
    match key.split_first() {
        Some((&ED25519_ALGORITHM, rest)) => Ok((name, id, rest.to_vec())),
        _ => Err(bad("only Ed25519 (algorithm 0x01) keys are supported")),
    }
}

/// Verifies checkpoints signed by one trusted key.
#[derive(Debug, Clone)]
pub struct CheckpointVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl CheckpointVerifier {
    /// Parses a verifier key (`<name>+<hex key id>+<base64(0x01 || public key)>`).
    pub fn from_verifier_key(text: &str) -> Result<Self, CheckpointError> {
        if text.trim_start().starts_with("PRIVATE+KEY+") {
            return Err(CheckpointError::MalformedKey(
                "this is the private signing key; checkpoints are verified with the verifier key (checkpoint.vkey), which is the one to hand out".into(),
            ));
        }
        let (name, id, key) = split_key(text.trim())?;
        let bytes: [u8; 32] = key.try_into().map_err(|_| {
            CheckpointError::MalformedKey("an Ed25519 public key is 32 bytes".into())
        })?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| CheckpointError::MalformedKey(e.to_string()))?;
        if key_id(name, key.as_bytes()) != id {
            return Err(CheckpointError::MalformedKey(
                "the key id does not match the key".into(),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// Checks the trusted key's signature and parses the checkpoint.
    pub fn verify(&self, note: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
        let malformed = |why: &str| CheckpointError::Malformed(why.to_owned());
        let split = note
            .find("\n\n")
            .ok_or_else(|| malformed("no blank line between body and signatures"))?;
        let (body, signatures) = (&note[..split + 1], &note[split + 2..]);
        let mut found = false;
        for line in signatures.lines().filter(|l| !l.is_empty()) {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| malformed("a signature line starts with an em dash and a space"))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line is '— <name> <signature>'"))?;
            let blob = STANDARD
                .decode(blob)
                .map_err(|_| malformed("a signature is not base64"))?;
            if name != self.name || blob.len() != 68 || blob[..4] != self.id {
                continue;
            }
            found = true;
            let signature = ed25519_dalek::Signature::from_slice(&blob[4..])
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
            self.key
                .verify(body.as_bytes(), &signature)
                .map_err(|_| CheckpointError::BadSignature(self.name.clone()))?;
        }
        if !found {
            return Err(CheckpointError::NotSignedByKey(self.name.clone()));
        }
        parse_body(body)
    }
}

fn parse_body(body: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    let malformed = |why: String| CheckpointError::Malformed(why);
    let lines: Vec<&str> = body
        .strip_suffix('\n')
        .unwrap_or(body)
        .split('\n')
        .collect();
    let [origin, size, root, extensions @ ..] = lines.as_slice() else {
        return Err(malformed(
            "a checkpoint body has an origin, a size and a root hash line".into(),
        ));
    };
    let size: u64 = size
        .parse()
        .map_err(|_| malformed(format!("tree size {size:?} is not a number")))?;
    let digest = |text: &str, what: &str| -> Result<Sha256Digest, CheckpointError> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| malformed(format!("{what} is not base64")))?;
        bytes
            .try_into()
            .map(Sha256Digest)
            .map_err(|_| malformed(format!("{what} is not 32 bytes")))
    };
    let root = digest(root, "root hash")?;
    let chain = extensions
        .iter()
        .find_map(|l| l.strip_prefix(CHAIN_HEAD_PREFIX))
        .ok_or_else(|| malformed("no chain-head line".into()))?;
    Ok(VerifiedCheckpoint {
        origin: (*origin).to_owned(),
        size,
        root,
        chain_head: digest(chain, "chain head")?,
    })
}

/// Where the last checkpoint signed for a ledger is kept: `LEDGER.checkpoint`.
pub fn checkpoint_path(ledger: &std::path::Path) -> std::path::PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".checkpoint");
    std::path::PathBuf::from(name)
}

/// Replaces the checkpoint file atomically: write a temporary file, fsync, rename.
pub fn write_checkpoint_file(path: &std::path::Path, note: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("checkpoint.tmp");
    std::fs::write(&temporary, note)?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Why the ledger refused to sign a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningRefused {
    /// The ledger holds fewer entries than it already signed for.
    #[error("the ledger holds {current} entries but a checkpoint for {signed} was already signed: it was rolled back")]
    RolledBack {
        /// Entries now.
        current: u64,
        /// Entries in the last signed checkpoint.
        signed: u64,
    },
    /// The ledger's tree at the last signed size differs from what was signed.
    #[error("the ledger's first {size} entries no longer have the root that was signed: its history was rewritten")]
    Forked {
        /// The last signed size.
        size: u64,
    },
}

/// Whether `tree` extends the checkpoint `previous` signed: it holds at least as many
/// entries, and its first `previous.size` entries have the root that was signed.
pub fn check_extends(
    tree: &crate::merkle::MerkleTree,
    previous: &VerifiedCheckpoint,
) -> Result<(), SigningRefused> {
    if previous.size > tree.len() {
        return Err(SigningRefused::RolledBack {
            current: tree.len(),
            signed: previous.size,
        });
    }
    if tree.root(previous.size).ok() != Some(previous.root) {
        return Err(SigningRefused::Forked {
            size: previous.size,
        });
    }
    Ok(())
}

/// Signs a checkpoint of the tree and chain head, but only if it extends `previous`
/// (the last checkpoint this ledger signed): the ledger never signs two inconsistent
/// checkpoints.
pub fn sign_consistent(
    signer: &CheckpointSigner,
    origin: &str,
    tree: &crate::merkle::MerkleTree,
    chain_head: Sha256Digest,
    previous: Option<&VerifiedCheckpoint>,
) -> Result<String, SigningRefused> {
    if let Some(previous) = previous {
        check_extends(tree, previous)?;
    }
    let size = tree.len();
    let root = tree.root(size).expect("the whole tree has a root");
    Ok(signer.sign(&Checkpoint {
        origin,
        size,
        root,
        chain_head,
    }))
}
