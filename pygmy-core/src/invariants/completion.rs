//! Invariant 5: **after faults heal, work finishes.**
//!
//! - Every buy the order group began is finished: no ledger still holds a
//!   pending buy ([`BUYS_FINISH`]); a new order primary finishes the ones it
//!   inherits, so a pending buy after quiescence is one nobody drives.
//! - The catalog forgets the reservation of every finished buy, so its
//!   memory is bounded by the buys in flight ([`RESERVATIONS_FORGOTTEN`]).
//! - Every client request invoked once the cluster has healed and settled
//!   gets a definite answer within a bound ([`COMPLETES_AFTER_HEALING`]).
//! - So does every request invoked *before* then: one still pending at
//!   the same bound past the settling point is flagged too — it gave up
//!   (no answer) after it, or got an answer only a `grace` later still,
//!   or none at all. Without this, a run whose clients are all stuck on
//!   requests invoked during the faults (the catalog left with no serving
//!   primary, say) would invoke nothing after healing and pass.
//!
//! The bound is the caller's (the simulation passes its `--bound`); times
//! are those of the history (nanoseconds of the run's clock).

use super::history::History;
use super::Violation;
use crate::state::catalog::Catalog;
use crate::state::orders::OrderLedger;

/// No buy is still pending once the cluster is quiet.
pub const BUYS_FINISH: &str = "buys finish";
/// The catalog remembers no reservation once every buy has finished.
pub const RESERVATIONS_FORGOTTEN: &str = "reservations forgotten";
/// After healing and settling, every request completes within the bound.
pub const COMPLETES_AFTER_HEALING: &str = "requests complete after healing";

/// [`BUYS_FINISH`] on every order replica's ledger, by replica name.
pub fn check_buys_finished<'a>(
    ledgers: impl IntoIterator<Item = (&'a str, &'a OrderLedger)>,
) -> Result<(), Violation> {
    for (name, ledger) in ledgers {
        let pending = ledger.pending();
        if !pending.is_empty() {
            return Err(Violation::new(
                BUYS_FINISH,
                format!(
                    "{name} still has {} pending buys after healing: {pending:?}",
                    pending.len()
                ),
            ));
        }
    }
    Ok(())
}

/// [`RESERVATIONS_FORGOTTEN`] on every catalog replica, by replica name.
/// Meaningful only once [`check_buys_finished`] holds.
pub fn check_reservations_forgotten<'a>(
    catalogs: impl IntoIterator<Item = (&'a str, &'a Catalog)>,
) -> Result<(), Violation> {
    for (name, catalog) in catalogs {
        if catalog.remembered() > 0 {
            return Err(Violation::new(
                RESERVATIONS_FORGOTTEN,
                format!(
                    "{name} still remembers {} reservations after every buy finished",
                    catalog.remembered()
                ),
            ));
        }
    }
    Ok(())
}

/// [`COMPLETES_AFTER_HEALING`]: every event invoked at or after `from` (the
/// cluster healed and settled) has a definite answer at most `bound` after
/// its invocation; and every event invoked before `from` is no longer
/// pending at `from + bound`: it has an answer by then, or a definite one
/// by `from + bound + grace` (`grace`: the longest a client's one exchange
/// may take, begun before that point), and it did not go unanswered.
/// Times in the history's nanoseconds. Reports the first event that fails.
pub fn check_completion(
    history: &History,
    from: u64,
    bound: u64,
    grace: u64,
) -> Result<(), Violation> {
    let stuck_at = from + bound;
    for e in history.events() {
        let ok = match &e.completed {
            Some((at, ret)) if e.invoked >= from => ret.is_definite() && at - e.invoked <= bound,
            // Invoked during the faults: it may fail, but not after the
            // cluster had settled for `bound`, nor hang much past that.
            Some((at, ret)) if ret.is_definite() => *at <= stuck_at + grace,
            Some((at, _)) => *at <= stuck_at,
            None => false,
        };
        if !ok {
            let why = if e.invoked >= from {
                format!("bound {:?}", std::time::Duration::from_nanos(bound))
            } else {
                format!(
                    "invoked before healing and settling, still pending {:?} after",
                    std::time::Duration::from_nanos(bound)
                )
            };
            return Err(Violation::new(
                COMPLETES_AFTER_HEALING,
                format!("{e} ({why})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::history::{Op, Ret};

    fn lookup() -> Op {
        Op::Lookup { item: 1 }
    }

    #[test]
    fn requests_answered_within_the_bound_pass() {
        let mut h = History::new();
        // Before `from`: failed during the faults, and answered late but
        // within the grace.
        let i = h.invoke(0, lookup(), 5);
        h.complete(i, 140, Ret::Failed("gave up".to_string()))
            .unwrap();
        let i = h.invoke(2, lookup(), 50);
        h.complete(i, 155, Ret::NotFound).unwrap();
        let i = h.invoke(1, lookup(), 100);
        h.complete(i, 150, Ret::NotFound).unwrap();
        assert_eq!(check_completion(&h, 100, 50, 10), Ok(()));
    }

    #[test]
    fn a_request_invoked_before_healing_and_still_pending_well_after_is_caught() {
        // `from` 100, bound 50: pending at 150 is stuck (grace 10).
        for answer in [
            Some((151, Ret::Failed("gave up".to_string()))),
            Some((161, Ret::NotFound)),
            None,
        ] {
            let mut h = History::new();
            let i = h.invoke(1, lookup(), 99);
            if let Some((at, ret)) = answer {
                h.complete(i, at, ret).unwrap();
            }
            let v = check_completion(&h, 100, 50, 10).unwrap_err();
            assert_eq!(v.invariant, COMPLETES_AFTER_HEALING);
        }
    }

    #[test]
    fn a_late_a_failed_or_an_unanswered_request_is_caught() {
        for answer in [
            Some((151, Ret::NotFound)),
            Some((120, Ret::Failed("timed out".to_string()))),
            None,
        ] {
            let mut h = History::new();
            let i = h.invoke(1, lookup(), 100);
            if let Some((at, ret)) = answer {
                h.complete(i, at, ret).unwrap();
            }
            let v = check_completion(&h, 100, 50, 10).unwrap_err();
            assert_eq!(v.invariant, COMPLETES_AFTER_HEALING);
        }
    }
}
