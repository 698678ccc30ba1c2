//! The RFC 6962 / RFC 9162 Merkle tree over the ledger's leaves: tree heads,
//! inclusion proofs and consistency proofs, and their verification.
//!
//! [`MerkleTree`] keeps every full, aligned subtree hash (level 0 holds the leaf
//! hashes; level `k` the hashes of 2^k-leaf subtrees), so any tree head or proof is
//! assembled from O(log n) stored hashes plus O(log n) hashing for the ragged edge.

use sha2::{Digest, Sha256};

use crate::digest::Sha256Digest;

/// RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Sha256Digest, right: &Sha256Digest) -> Sha256Digest {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Sha256Digest(h.finalize().into())
}

/// The head of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Sha256Digest {
    Sha256Digest(Sha256::digest(b"").into())
}

/// Why a proof was not produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index is not below the tree size.
    #[error("index {index} is not in a tree of {size} entries")]
    IndexOutOfRange {
        /// Requested index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A tree size larger than the ledger.
    #[error("tree size {requested} is not available (the ledger holds {available} entries)")]
    SizeOutOfRange {
        /// Requested size.
        requested: u64,
        /// Largest available size.
        available: u64,
    },
    /// A consistency proof asked from a larger tree to a smaller one.
    #[error("the first tree size ({first}) is larger than the second ({second}); a consistency proof goes from an older, smaller tree to a newer one")]
    SizesReversed {
        /// The first (older) size asked for.
        first: u64,
        /// The second (newer) size asked for.
        second: u64,
    },
}

/// An inclusion proof as served to auditors (CLI `--json` and the API): hashes in hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The entry's leaf hash.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub leaf_hash: Sha256Digest,
    /// The tree head at `tree_size`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub root: Sha256Digest,
    /// The audit path, leaf to root.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub proof: Vec<Sha256Digest>,
}

/// A consistency proof as served to auditors: hashes in hex.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    /// The older tree size.
    pub first: u64,
    /// The newer tree size.
    pub second: u64,
    /// The tree head at `first`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub first_root: Sha256Digest,
    /// The tree head at `second`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub second_root: Sha256Digest,
    /// The proof.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub proof: Vec<Sha256Digest>,
}

/// An append-only RFC 6962 Merkle tree of leaf hashes.
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    /// `levels[k][i]` is the hash of leaves `i*2^k .. (i+1)*2^k`.
    levels: Vec<Vec<Sha256Digest>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
        }
    }

    /// Appends a leaf hash (already `SHA-256(0x00 || leaf)`).
    pub fn push(&mut self, leaf_hash: Sha256Digest) {
        self.levels[0].push(leaf_hash);
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let nodes = &self.levels[level];
            let parent = node_hash(&nodes[nodes.len() - 2], &nodes[nodes.len() - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    /// How many leaves the tree holds.
    pub fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: u64) -> Option<Sha256Digest> {
        self.levels[0].get(index as usize).copied()
    }

    /// The tree head (MTH) of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Sha256Digest, ProofError> {
        self.check_size(size)?;
        Ok(if size == 0 {
            empty_root()
        } else {
            self.subtree(0, size)
        })
    }

    /// The inclusion proof (RFC 6962 PATH) of leaf `index` in the tree of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Sha256Digest>, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    /// The consistency proof (RFC 6962 PROOF) that the tree of `first` leaves is a prefix
    /// of the tree of `second` leaves.
    pub fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Sha256Digest>, ProofError> {
        self.check_size(second)?;
        if first > second {
            return Err(ProofError::SizesReversed { first, second });
        }
        let mut proof = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut proof);
        }
        Ok(proof)
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries (default: all),
    /// with the leaf hash and root it verifies against.
    pub fn prove_inclusion(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, ProofError> {
        let tree_size = size.unwrap_or(self.len());
        let proof = self.inclusion_proof(index, tree_size)?;
        let leaf_hash = self
            .leaf(index)
            .expect("the index was checked by the proof");
        Ok(InclusionProof {
            index,
            tree_size,
            leaf_hash,
            root: self.root(tree_size)?,
            proof,
        })
    }

    /// The consistency proof from `first` to `second` entries (default: all), with both roots.
    pub fn prove_consistency(
        &self,
        first: u64,
        second: Option<u64>,
    ) -> Result<ConsistencyProof, ProofError> {
        let second = second.unwrap_or(self.len());
        let proof = self.consistency_proof(first, second)?;
        Ok(ConsistencyProof {
            first,
            second,
            first_root: self.root(first)?,
            second_root: self.root(second)?,
            proof,
        })
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        if size > self.len() {
            return Err(ProofError::SizeOutOfRange {
                requested: size,
                available: self.len(),
            });
        }
        Ok(())
    }

    /// MTH of leaves `start .. start + n` (n > 0), from stored full subtrees.
    fn subtree(&self, start: u64, n: u64) -> Sha256Digest {
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let level = n.trailing_zeros() as usize;
            return self.levels[level][(start >> level) as usize];
        }
        let k = largest_power_of_two_below(n);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, n - k))
    }

    fn path(&self, index: u64, start: u64, n: u64, proof: &mut Vec<Sha256Digest>) {
        if n == 1 {
            return;
        }
        let k = largest_power_of_two_below(n);
        if index < k {
            self.path(index, start, k, proof);
            proof.push(self.subtree(start + k, n - k));
        } else {
            self.path(index - k, start + k, n - k, proof);
            proof.push(self.subtree(start, k));
        }
    }

    fn subproof(&self, m: u64, start: u64, n: u64, complete: bool, proof: &mut Vec<Sha256Digest>) {
        if m == n {
            if !complete {
                proof.push(self.subtree(start, n));
            }
            return;
        }
        let k = largest_power_of_two_below(n);
        if m <= k {
            self.subproof(m, start, k, complete, proof);
            proof.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, proof);
            proof.push(self.subtree(start, k));
        }
    }
}

/// Computes a tree head from leaf hashes streamed in order, in O(log n) memory
/// (for verifying a ledger too large to hold its tree).
#[derive(Debug, Clone, Default)]
pub struct RootAccumulator {
    /// Full subtrees, largest (leftmost) first: (leaf count, hash).
    stack: Vec<(u64, Sha256Digest)>,
}

impl RootAccumulator {
    /// Adds the next leaf hash.
    pub fn push(&mut self, leaf_hash: Sha256Digest) {
        let mut node = (1u64, leaf_hash);
        while let Some(&(size, left)) = self.stack.last() {
            if size != node.0 {
                break;
            }
            self.stack.pop();
            node = (size * 2, node_hash(&left, &node.1));
        }
        self.stack.push(node);
    }

    /// The tree head of every leaf pushed so far.
    pub fn root(&self) -> Sha256Digest {
        let mut subtrees = self.stack.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(&(_, last)) => subtrees.fold(last, |right, (_, left)| node_hash(left, &right)),
        }
    }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Sha256Digest,
    index: u64,
    size: u64,
    proof: &[Sha256Digest],
    root: &Sha256Digest,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Verifies a consistency proof between tree heads of sizes `first` ≤ `second`
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Sha256Digest,
    second_root: &Sha256Digest,
    proof: &[Sha256Digest],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty() && *first_root == empty_root();
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Sha256Digest> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *first_root && sr == *second_root
}
