//! The view records a coordinator stored, with several front ends: what
//! "views change only by compare-and-swap, and only by the leader" must
//! give, checked on the sequence of stores the coordinator applied (the
//! simulation's model records it, see `frontend/coordination/model.rs`).
//!
//! - [`ONE_VIEW_PER_EPOCH`]: no two stores hold different views of one
//!   group under one epoch.
//! - [`RECORDS_MOVE_FORWARD`]: each store keeps what the one before it
//!   held: a group's current epoch and its confirmed epoch never go back,
//!   and a group once recorded is never dropped (a store decided from an
//!   older revision, written without compare-and-swap, would undo a
//!   confirmation or a view).
//! - [`VIEWS_BY_LEADER`]: a store that changes a group's current view was
//!   made by the front end holding the leadership at that moment
//!   (confirmations may come from any front end).

use super::Violation;
use crate::frontend::coordination::model::Stored;
use crate::types::Group;
use crate::view::View;
use std::collections::BTreeMap;

/// Two different views were stored under one epoch.
pub const ONE_VIEW_PER_EPOCH: &str = "one view per epoch";
/// A store undid what an earlier one held.
pub const RECORDS_MOVE_FORWARD: &str = "view records move forward";
/// A view was changed by a front end that did not lead.
pub const VIEWS_BY_LEADER: &str = "views change only by the leader";

/// Checks the stores, in the order the coordinator applied them.
pub fn check_view_history(stores: &[Stored]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut by_epoch: BTreeMap<(Group, u64), &View> = BTreeMap::new();
    let mut previous: BTreeMap<Group, (u64, Option<u64>, &View)> = BTreeMap::new();
    for s in stores {
        let mut seen_groups = Vec::new();
        for r in &s.records {
            let g = r.current.group;
            seen_groups.push(g);
            let key = (g, r.current.epoch);
            match by_epoch.get(&key) {
                Some(v) if **v != r.current => out.push(Violation::new(
                    ONE_VIEW_PER_EPOCH,
                    format!(
                        "revision {} by {}: {g} epoch {} is {:?}, earlier {:?}",
                        s.revision, s.writer, r.current.epoch, r.current, v
                    ),
                )),
                Some(_) => {}
                None => {
                    by_epoch.insert(key, &r.current);
                }
            }
            let confirmed = r.confirmed.as_ref().map(|c| c.epoch);
            if let Some((epoch, was_confirmed, view)) = previous.get(&g) {
                if r.current.epoch < *epoch || confirmed < *was_confirmed {
                    out.push(Violation::new(
                        RECORDS_MOVE_FORWARD,
                        format!(
                            "revision {} by {}: {g} went back to epoch {} (confirmed {:?}) from {} (confirmed {:?})",
                            s.revision, s.writer, r.current.epoch, confirmed, epoch, was_confirmed
                        ),
                    ));
                }
                if r.current != **view && !s.by_leader {
                    out.push(Violation::new(
                        VIEWS_BY_LEADER,
                        format!(
                            "revision {} by {}, which did not lead: {g} epoch {}",
                            s.revision, s.writer, r.current.epoch
                        ),
                    ));
                }
            } else if !s.by_leader {
                out.push(Violation::new(
                    VIEWS_BY_LEADER,
                    format!(
                        "revision {} by {}, which did not lead: first {g} view",
                        s.revision, s.writer
                    ),
                ));
            }
            previous.insert(g, (r.current.epoch, confirmed, &r.current));
        }
        for g in previous.keys() {
            if !seen_groups.contains(g) {
                out.push(Violation::new(
                    RECORDS_MOVE_FORWARD,
                    format!(
                        "revision {} by {} dropped the {g} record",
                        s.revision, s.writer
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;
    use crate::view::GroupRecord;

    fn view(epoch: u64, primary: &str) -> View {
        View {
            group: Group::Catalog,
            epoch,
            primary: NodeId(primary.into()),
            backups: vec![],
        }
    }

    fn stored(revision: u64, current: View, confirmed: Option<View>, by_leader: bool) -> Stored {
        Stored {
            revision,
            records: vec![GroupRecord {
                current,
                confirmed,
                disks: Default::default(),
            }],
            writer: NodeId("fe".into()),
            by_leader,
        }
    }

    #[test]
    fn each_breach_is_named_and_a_good_history_passes() {
        let good = [
            stored(1, view(1, "a"), None, true),
            stored(2, view(1, "a"), Some(view(1, "a")), false),
            stored(3, view(2, "b"), Some(view(1, "a")), true),
        ];
        assert!(check_view_history(&good).is_empty());
        let names = |h: &[Stored]| -> Vec<&str> {
            check_view_history(h).iter().map(|v| v.invariant).collect()
        };
        let two = [good[0].clone(), stored(2, view(1, "b"), None, true)];
        assert_eq!(names(&two), [ONE_VIEW_PER_EPOCH]);
        let undone = [
            good[0].clone(),
            good[1].clone(),
            stored(3, view(1, "a"), None, true),
        ];
        assert_eq!(names(&undone), [RECORDS_MOVE_FORWARD]);
        let deposed = [good[0].clone(), stored(2, view(2, "b"), None, false)];
        assert_eq!(names(&deposed), [VIEWS_BY_LEADER]);
    }
}
