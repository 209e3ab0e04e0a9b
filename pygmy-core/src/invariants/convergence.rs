//! Invariant 3: **after faults heal, the replicas of a group converge to
//! identical state.**
//!
//! All replicas of a group report the same commit lsn and state digest.
//! Exact for the digests it is given (a digest collision could hide a
//! difference, with negligible probability).

use super::Violation;

/// Replicas converge to one state.
pub const CONVERGED: &str = "replicas converge";

/// Invariant 3: `(replica name, commit lsn, state digest)` of every replica
/// of one group, after healing. All must be equal.
pub fn check_converged(digests: &[(String, u64, u64)]) -> Result<(), Violation> {
    let Some(((first, lsn0, digest0), rest)) = digests.split_first() else {
        return Ok(());
    };
    for (name, lsn, digest) in rest {
        if (lsn, digest) != (lsn0, digest0) {
            return Err(Violation::new(
                CONVERGED,
                format!(
                    "{first} committed lsn {lsn0} with digest {digest0:#018x}, \
                     {name} committed lsn {lsn} with digest {digest:#018x}"
                ),
            ));
        }
    }
    Ok(())
}
