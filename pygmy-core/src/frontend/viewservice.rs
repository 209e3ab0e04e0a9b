//! View selection: the view service's decision, as one pure function.
//!
//! The front end is the view service of both groups. After every heartbeat
//! round it calls [`next_view`] with the group's durable record (the view it
//! last announced and the last view whose primary confirmed it) and the
//! status of each member as the probes saw it (`None`: down). `next_view`
//! returns the view to store and announce next, or `None` to keep the
//! current one. It does no I/O; the front end stores the view durably
//! before anyone hears of it.
//!
//! # Rules, in order
//!
//! A member is *usable* when it is up and `ready` (its disk works).
//!
//! 1. **Bootstrap.** With no record yet, wait until *every* member is up
//!    and reports epoch 0 (a fresh replica), then choose epoch 1 with the
//!    first member as primary and the others as backups. Waiting for all
//!    members means no replica can be left out holding data the others lack.
//!    A member reporting an epoch above 0 means views existed that this
//!    front end has no record of (its record was lost): choosing one would
//!    risk a stale primary, so nothing is chosen; an operator must restore
//!    the record.
//! 2. **Replace the primary** when it is down, not ready, reports an epoch
//!    newer than the record's, or *restarted*: the current view is confirmed
//!    (so its primary served) yet the primary reports that same epoch and
//!    is not serving. The new primary is chosen only among usable members
//!    of the **last confirmed view**: each of those holds every committed
//!    entry, because an entry commits only once every backup of a
//!    confirmed view holds it durably, and a replica outside that view may
//!    have missed some. Among them the longest log wins (the fewest
//!    uncommitted writes lost), then configuration order. The other usable
//!    members of the confirmed view become the backups. If no view was ever
//!    confirmed, nothing was ever committed and any usable member will do.
//!    If no candidate is usable, nothing is chosen: the group waits for one
//!    to come back rather than lose committed writes.
//! 3. **Drop dead backups.** A backup that is down is removed, so the
//!    primary stops waiting for it and commits again.
//! 4. **Add caught-up joiners, once confirmed.** A usable member outside the
//!    view whose log ends within [`JOIN_SLACK`] entries of the primary's
//!    commit point joins as a backup. Only after the current view is
//!    confirmed: until then the primary is still synchronising the members
//!    it has, and the confirmed view must stay the one whose members hold
//!    everything. The new primary's `StartView` then waits until the joiner
//!    holds the whole log before the view is confirmed.
//!
//! Every new view has the epoch `max(record's epoch, highest epoch a member
//! reports) + 1`, so replicas, which refuse any message of an older epoch,
//! always accept it.
//!
//! # Guarantees
//!
//! - **No stale primary.** A member becomes the primary of a new view only
//!   if it belongs to the last confirmed view (or no view was ever
//!   confirmed), on the disk it was confirmed with; every other rule keeps
//!   the current primary.
//! - **One damaged disk loses nothing.** The proptest below damages one
//!   replica's disk (emptied, or a lost log tail) while it is down, as
//!   long as another holds every committed entry, and checks that the log
//!   every new primary ends with (its own or the longest it adopts) holds
//!   every committed entry.
//! - **Epochs strictly increase** from one view to the next.
//! - **Every member of a new view is up**, its primary usable, and the
//!   primary is not among the backups; members come from `members` only,
//!   each once.
//! - **Progress.** When the primary is down and a usable, intact member of
//!   the last confirmed view is up — certain of its log, or with every
//!   other member of that view up — a new view is chosen.
//! - Deterministic: the statuses come in an ordered map and ties are broken
//!   by configuration order.
//!
//! # Caveats
//!
//! - The statuses must be no older than the record: a probe answered
//!   before the current view was confirmed shows its primary not serving
//!   yet, which rule 2 would read as a restart. The front end discards such
//!   probes (see `heartbeat_round`).
//! - A backup that is up but not `ready` is kept (it may be resyncing);
//!   while it cannot acknowledge, the primary cannot commit.
//! - With the record lost, bootstrap refuses to guess (rule 1).

use crate::transport::message::ReplicaStatus;
use crate::types::{Epoch, Group, NodeId};
use crate::view::{GroupRecord, View};
use std::collections::BTreeMap;

/// How many entries behind the primary's commit point a replica may be and
/// still join the view as a backup (the new view's start makes it catch up
/// before the view is confirmed, so this bounds that wait).
pub const JOIN_SLACK: u64 = 64;

/// The next view of `group` given its record and the members' statuses
/// (`None`: down), or `None` to keep the current view. See the module docs.
pub fn next_view(
    record: Option<&GroupRecord>,
    group: Group,
    members: &[NodeId],
    status: &BTreeMap<NodeId, Option<ReplicaStatus>>,
) -> Option<View> {
    let up = |n: &NodeId| status.get(n).and_then(|s| s.as_ref());
    let usable = |n: &NodeId| up(n).filter(|s| s.ready);
    let Some(record) = record else {
        return bootstrap(group, members, &up);
    };
    let current = &record.current;
    let epoch = members
        .iter()
        .filter_map(|m| up(m).map(|s| s.epoch))
        .fold(current.epoch, Epoch::max)
        + 1;

    // A member's disk is intact when it is the one the record holds for it
    // (storage faults, see the module docs).
    let intact =
        |n: &NodeId| up(n).is_some_and(|s| !s.recovering && record.disk_matches(n, s.disk));

    let on_intact_disk =
        |n: &NodeId| up(n).map(|s| !s.recovering && record.disk_matches(n, s.disk));
    // 2. Replace the primary.
    let restarted = |s: &ReplicaStatus| {
        !s.ready
            || s.recovering
            || !record.disk_matches(&current.primary, s.disk)
            || s.epoch > current.epoch
            || (record.is_confirmed() && s.epoch == current.epoch && !s.serving)
            || (s.uncertain && !may_confirm(record, &on_intact_disk))
    };
    let primary = up(&current.primary);
    if primary.is_none_or(restarted) {
        let eligible = |m: &NodeId| match &record.confirmed {
            Some(confirmed) => confirmed.contains(m),
            // Nothing was ever committed: every member holds all of it.
            None => true,
        };
        // Members that hold every committed entry, bar a lost log tail.
        let holders: Vec<&NodeId> = members
            .iter()
            .filter(|m| eligible(m) && usable(m).is_some() && intact(m))
            .collect();
        // Every other member of the confirmed view is up, and either
        // usable (so the new primary adopts its log if longer) or known to
        // hold nothing (its disk is new): an uncertain holder may lead then.
        let accounted = |m: &NodeId| {
            record.confirmed.as_ref().is_none_or(|c| {
                c.members()
                    .filter(|o| *o != m)
                    .all(|o| up(o).is_some_and(|s| s.ready || !intact(o)))
            })
        };
        let candidates: Vec<&NodeId> = holders
            .iter()
            .copied()
            .filter(|m| usable(m).is_some_and(|s| !s.uncertain) || accounted(m))
            .collect();
        // The longest log; on a tie the first in configuration order
        // (`max_by_key` keeps the last maximum, so search from the back).
        let new_primary = candidates
            .iter()
            .rev()
            .max_by_key(|m| usable(m).map(|s| s.end))?;
        return Some(View {
            group,
            epoch,
            primary: (*new_primary).clone(),
            backups: holders
                .iter()
                .filter(|m| **m != *new_primary)
                .map(|m| (*m).clone())
                .collect(),
        });
    }

    // 3. Drop dead backups, and those of a confirmed view whose disk is not
    // the one it was confirmed with.
    let gone = |b: &NodeId| up(b).is_none() || (record.is_confirmed() && !intact(b));
    if current.backups.iter().any(gone) {
        return Some(View {
            group,
            epoch,
            primary: current.primary.clone(),
            backups: current
                .backups
                .iter()
                .filter(|b| !gone(b))
                .cloned()
                .collect(),
        });
    }

    // 4. Add caught-up joiners, once confirmed.
    if !record.is_confirmed() {
        return None;
    }
    let commit = primary.map_or(0, |s| s.commit);
    let joins = |m: &NodeId| {
        !current.contains(m)
            && usable(m).is_some_and(|s| s.end.lsn.saturating_add(JOIN_SLACK) >= commit)
    };
    if !members.iter().any(joins) {
        return None;
    }
    Some(View {
        group,
        epoch,
        primary: current.primary.clone(),
        backups: members
            .iter()
            .filter(|m| current.backups.contains(m) || joins(m))
            .cloned()
            .collect(),
    })
}

/// Whether the primary of `record.current` may have it confirmed, as far as
/// storage faults go: a primary whose log's tail is uncertain (it
/// restarted and has not resynchronised since) may lack committed entries,
/// so its view must hold every other member of the last confirmed view
/// whose disk may hold them (its view start then adopts the longest log).
/// `intact(n)`: `Some(false)` when `n` is up on a disk that is not the one
/// the record holds for it (so it holds nothing), `None` when unknown.
pub fn may_confirm(record: &GroupRecord, intact: &dyn Fn(&NodeId) -> Option<bool>) -> bool {
    let current = &record.current;
    record.confirmed.as_ref().is_none_or(|c| {
        c.members()
            .filter(|m| **m != current.primary)
            .all(|m| current.backups.contains(m) || intact(m) == Some(false))
    })
}

/// Rule 1: the first view, once every member is up and fresh.
fn bootstrap<'a>(
    group: Group,
    members: &[NodeId],
    up: &impl Fn(&NodeId) -> Option<&'a ReplicaStatus>,
) -> Option<View> {
    let (first, rest) = members.split_first()?;
    let fresh = members
        .iter()
        .all(|m| up(m).is_some_and(|s| s.epoch == 0 && s.ready));
    fresh.then(|| View {
        group,
        epoch: 1,
        primary: first.clone(),
        backups: rest.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{LogPos, Lsn};
    use proptest::prelude::*;

    fn n(i: usize) -> NodeId {
        NodeId(format!("r{i}"))
    }

    fn status(i: usize, epoch: Epoch, serving: bool, end: Lsn) -> ReplicaStatus {
        ReplicaStatus {
            node: n(i),
            group: Group::Catalog,
            epoch,
            serving,
            ready: true,
            end: LogPos::new(epoch, end),
            commit: end,
            digest: 0,
            disk: i as u64,
            uncertain: false,
            recovering: false,
            lease_ms: 0,
            lease_new: false,
        }
    }

    fn view(epoch: Epoch, primary: usize, backups: &[usize]) -> View {
        View {
            group: Group::Catalog,
            epoch,
            primary: n(primary),
            backups: backups.iter().map(|b| n(*b)).collect(),
        }
    }

    fn record(current: View, confirmed: Option<View>) -> GroupRecord {
        // Each member's disk is `i` (see `status`).
        let disks = confirmed
            .iter()
            .flat_map(|c| c.members().map(|m| (m.clone(), index(m) as u64)))
            .collect();
        GroupRecord {
            current,
            confirmed,
            disks,
        }
    }

    fn confirmed(v: View) -> GroupRecord {
        record(v.clone(), Some(v))
    }

    fn statuses(members: usize, up: &[ReplicaStatus]) -> BTreeMap<NodeId, Option<ReplicaStatus>> {
        let mut map: BTreeMap<_, _> = (0..members).map(|i| (n(i), None)).collect();
        for s in up {
            map.insert(s.node.clone(), Some(s.clone()));
        }
        map
    }

    fn members(k: usize) -> Vec<NodeId> {
        (0..k).map(n).collect()
    }

    fn decide(r: Option<&GroupRecord>, k: usize, up: &[ReplicaStatus]) -> Option<View> {
        next_view(r, Group::Catalog, &members(k), &statuses(k, up))
    }

    #[test]
    fn bootstrap_waits_for_every_fresh_member() {
        assert_eq!(decide(None, 2, &[status(0, 0, false, 0)]), None);
        let both = [status(0, 0, false, 0), status(1, 0, false, 0)];
        assert_eq!(decide(None, 2, &both), Some(view(1, 0, &[1])));
        let stale = [status(0, 0, false, 0), status(1, 3, false, 9)];
        assert_eq!(decide(None, 2, &stale), None, "a record was lost");
        assert_eq!(decide(None, 0, &[]), None, "no members, no view");
    }

    #[test]
    fn a_view_is_kept_while_all_is_well() {
        let r = confirmed(view(4, 0, &[1]));
        let up = [status(0, 4, true, 10), status(1, 4, false, 10)];
        assert_eq!(decide(Some(&r), 2, &up), None);
        // An unconfirmed view whose primary has not started serving yet.
        let r = record(view(5, 0, &[1]), Some(view(4, 0, &[1])));
        let up = [status(0, 5, false, 10), status(1, 5, false, 10)];
        assert_eq!(decide(Some(&r), 2, &up), None);
    }

    #[test]
    fn a_dead_primary_is_replaced_by_a_backup_of_the_confirmed_view() {
        let r = confirmed(view(4, 0, &[1, 2]));
        let up = [status(1, 4, false, 10), status(2, 4, false, 12)];
        assert_eq!(
            decide(Some(&r), 3, &up),
            Some(view(5, 2, &[1])),
            "longest log"
        );
        let tie = [status(1, 4, false, 12), status(2, 4, false, 12)];
        assert_eq!(
            decide(Some(&tie_record()), 3, &tie),
            Some(view(5, 1, &[2])),
            "first in configuration order"
        );
    }

    fn tie_record() -> GroupRecord {
        confirmed(view(4, 0, &[1, 2]))
    }

    #[test]
    fn a_replica_outside_the_last_confirmed_view_never_becomes_primary() {
        // r1 was dropped in view 4 (confirmed), which then committed without
        // it; r1 is back with a longer-looking log from an old epoch.
        let r = confirmed(view(4, 0, &[]));
        let mut stale = status(1, 4, false, 99);
        stale.end = LogPos::new(3, 99);
        assert_eq!(decide(Some(&r), 2, &[stale.clone()]), None);
        // Even while the current view is unconfirmed and names it.
        let r = record(view(5, 0, &[1]), Some(view(4, 0, &[])));
        assert_eq!(decide(Some(&r), 2, &[stale]), None);
    }

    #[test]
    fn a_restarted_primary_is_replaced() {
        let r = confirmed(view(4, 0, &[1]));
        let up = [status(0, 4, false, 10), status(1, 4, false, 10)];
        assert_eq!(decide(Some(&r), 2, &up), Some(view(5, 0, &[1])));
        // A primary whose disk failed is replaced by a usable backup.
        let mut failed = status(0, 4, false, 10);
        failed.ready = false;
        let up = [failed, status(1, 4, false, 10)];
        assert_eq!(decide(Some(&r), 2, &up), Some(view(5, 1, &[])));
    }

    #[test]
    fn a_member_with_a_newer_epoch_moves_the_epoch_past_it() {
        let r = confirmed(view(4, 0, &[1]));
        let up = [status(0, 7, false, 10), status(1, 4, false, 10)];
        assert_eq!(decide(Some(&r), 2, &up), Some(view(8, 0, &[1])));
    }

    #[test]
    fn before_any_confirmation_any_usable_member_may_take_over() {
        // Epoch 2 named r1 alone and was never confirmed; r1 died.
        let r = record(view(2, 1, &[]), None);
        let up = [status(0, 2, false, 0)];
        assert_eq!(decide(Some(&r), 2, &up), Some(view(3, 0, &[])));
    }

    #[test]
    fn a_dead_backup_is_dropped() {
        let r = confirmed(view(4, 0, &[1, 2]));
        let up = [status(0, 4, true, 10), status(2, 4, false, 10)];
        assert_eq!(decide(Some(&r), 3, &up), Some(view(5, 0, &[2])));
    }

    #[test]
    fn a_caught_up_joiner_is_added_once_confirmed() {
        let far = [
            status(0, 4, true, 200),
            status(1, 3, false, 200 - JOIN_SLACK - 1),
        ];
        let near = [
            status(0, 4, true, 200),
            status(1, 3, false, 200 - JOIN_SLACK),
        ];
        let r = confirmed(view(4, 0, &[]));
        assert_eq!(decide(Some(&r), 2, &far), None, "too far behind");
        assert_eq!(decide(Some(&r), 2, &near), Some(view(5, 0, &[1])));
        let unconfirmed = record(view(4, 0, &[]), Some(view(3, 0, &[])));
        assert_eq!(decide(Some(&unconfirmed), 2, &near), None);
        let mut busy = near.clone();
        busy[1].ready = false;
        assert_eq!(decide(Some(&r), 2, &busy), None, "not ready");
    }

    /// A replica in the model of `a_run_of_views_stays_safe`.
    #[derive(Clone, Debug)]
    struct Sim {
        up: bool,
        ready: bool,
        epoch: Epoch,
        serving: bool,
        end: LogPos,
        /// Holds every committed entry.
        has_all: bool,
        /// Its disk's identity (a damaged disk gets a new one).
        disk: u64,
        /// Restarted with data and not resynchronised since.
        uncertain: bool,
    }

    #[derive(Clone, Debug)]
    enum Step {
        Crash(usize),
        Restart(usize),
        DiskFails(usize),
        /// The primary confirms its view (if it can).
        Confirm,
        /// The primary commits this many entries (if it can).
        Commit(u64),
        /// A replica outside the view appends uncommitted entries of its
        /// own epoch (an old primary's suffix).
        Scribble(usize, u64),
        /// A heartbeat round: up replicas learn the current view, then the
        /// view service decides from their answers.
        Tick,
        /// A down replica's disk is damaged and set aside (or emptied): a
        /// new disk, empty.
        Damage(usize),
        /// A down replica's log loses this many entries at its tail.
        LoseTail(usize, u64),
    }

    fn step(k: usize) -> impl Strategy<Value = Step> {
        prop_oneof![
            2 => (0..k).prop_map(Step::Crash),
            2 => (0..k).prop_map(Step::Restart),
            1 => (0..k).prop_map(Step::DiskFails),
            3 => Just(Step::Confirm),
            3 => (1..100u64).prop_map(Step::Commit),
            1 => ((0..k), (1..300u64)).prop_map(|(i, x)| Step::Scribble(i, x)),
            6 => Just(Step::Tick),
            1 => (0..k).prop_map(Step::Damage),
            1 => ((0..k), (1..50u64)).prop_map(|(i, x)| Step::LoseTail(i, x)),
        ]
    }

    proptest! {
        /// Drives `next_view` through random crashes, restarts, disk
        /// failures, confirmations and commits, against a model that knows
        /// which replicas hold every committed entry. Every new view: a
        /// strictly higher epoch; all members up and from the configuration,
        /// each once; a usable primary; and a primary that changed is a
        /// member of the last confirmed view holding every committed entry.
        /// And a new view is chosen when the primary is down while a usable
        /// member of the last confirmed view is up, or when a backup is down
        /// while the primary is usable.
        #[test]
        fn a_run_of_views_stays_safe(
            k in 1..4usize,
            steps in proptest::collection::vec(step(3), 1..120),
        ) {
            let fresh = Sim {
                up: true, ready: true, epoch: 0, serving: false,
                end: LogPos::ZERO, has_all: true, disk: 0, uncertain: false,
            };
            let mut sims = vec![fresh; k];
            for (i, s) in sims.iter_mut().enumerate() {
                s.disk = i as u64;
            }
            let mut next_disk = k as u64;
            let mut rec: Option<GroupRecord> = None;
            let mut committed: u64 = 0;
            let all = members(k);
            for s in steps {
                match s {
                    Step::Crash(i) if i < k => {
                        sims[i].up = false;
                        sims[i].serving = false;
                    }
                    Step::Restart(i) if i < k && !sims[i].up => {
                        sims[i].up = true;
                        sims[i].ready = true;
                        sims[i].uncertain = sims[i].end != LogPos::ZERO || sims[i].epoch > 0;
                    }
                    // The fault model: one replica's storage (here r0's) may
                    // be damaged while it is down, as long as another holds
                    // every committed entry.
                    Step::Damage(0) if k > 1 && !sims[0].up
                        && sims[1..].iter().any(|s| s.has_all) =>
                    {
                        let s = &mut sims[0];
                        s.disk = next_disk;
                        next_disk += 1;
                        s.has_all = committed == 0;
                        s.end = LogPos::ZERO;
                        s.epoch = 0;
                    }
                    Step::LoseTail(0, x) if k > 1 && !sims[0].up
                        && sims[1..].iter().any(|s| s.has_all) =>
                    {
                        let s = &mut sims[0];
                        s.end = LogPos::new(s.end.epoch, s.end.lsn.saturating_sub(x));
                        s.has_all = s.has_all && s.end.lsn >= committed;
                    }
                    Step::DiskFails(i) if i < k => {
                        sims[i].ready = false;
                        sims[i].serving = false;
                    }
                    Step::Confirm => {
                        let Some(r) = rec.as_mut() else { continue };
                        let v = r.current.clone();
                        let p = &sims[index(&v.primary)];
                        // A recovering replica never starts a view.
                        // A primary unsure of its log's tail needs every
                        // member that may hold committed entries in its view.
                        let on_intact = |m: &NodeId| {
                            let s = &sims[index(m)];
                            s.up.then(|| r.disk_matches(m, s.disk))
                        };
                        let ok = !r.is_confirmed()
                            && p.ready
                            && r.disk_matches(&v.primary, p.disk)
                            && (!p.uncertain || may_confirm(r, &on_intact))
                            && v.members().all(|m| {
                                let s = &sims[index(m)];
                                s.up && s.epoch == v.epoch
                            });
                        if ok {
                            // StartView: every member ends with the log the
                            // primary adopts.
                            let adopted = adopted(&sims, &v);
                            let has_all = sims[adopted].has_all;
                            let end = sims[adopted].end;
                            for m in v.members() {
                                let s = &mut sims[index(m)];
                                s.has_all = has_all;
                                s.end = end;
                                s.uncertain = false;
                            }
                            sims[index(&v.primary)].serving = true;
                            r.disks = v.members().map(|m| (m.clone(), sims[index(m)].disk)).collect();
                            r.confirmed = Some(v);
                        }
                    }
                    Step::Commit(x) => {
                        let Some(r) = rec.as_ref() else { continue };
                        let v = &r.current;
                        let ok = r.is_confirmed()
                            && sims[index(&v.primary)].serving
                            && v.members().all(|m| sims[index(m)].up && sims[index(m)].ready);
                        if ok {
                            committed = committed.max(sims[index(&v.primary)].end.lsn) + x;
                            for (i, s) in sims.iter_mut().enumerate() {
                                if v.contains(&n(i)) {
                                    s.end = LogPos::new(v.epoch, committed);
                                } else {
                                    s.has_all = false;
                                }
                            }
                        }
                    }
                    Step::Scribble(i, x) if i < k => {
                        let in_view = rec.as_ref().is_some_and(|r| r.current.contains(&n(i)));
                        // Only a running old primary writes (a restarted one
                        // first adopts the view's longest log).
                        if !in_view && sims[i].up && !sims[i].uncertain {
                            let s = &mut sims[i];
                            // In the epoch of its last entry: only that
                            // epoch's primary (it, once) wrote entries in it.
                            s.end = LogPos::new(s.end.epoch, s.end.lsn + x);
                        }
                    }
                    Step::Tick => {
                        // The probes carry the current view; up replicas
                        // accept it if newer, then answer.
                        if let Some(r) = &rec {
                            for s in sims.iter_mut().filter(|s| s.up && s.epoch < r.current.epoch) {
                                s.epoch = r.current.epoch;
                                s.serving = false;
                            }
                        }
                        let status: BTreeMap<_, _> = sims.iter().enumerate().map(|(i, s)| {
                            let st = s.up.then(|| ReplicaStatus {
                                node: n(i),
                                group: Group::Catalog,
                                epoch: s.epoch,
                                serving: s.serving,
                                ready: s.ready,
                                end: s.end,
                                commit: if s.has_all { committed } else { 0 },
                                digest: 0,
                                disk: s.disk,
                                uncertain: s.uncertain,
                                recovering: rec.as_ref().is_some_and(|r| !r.disk_matches(&n(i), s.disk)),
                                lease_ms: 0,
                                lease_new: false,
                            });
                            (n(i), st)
                        }).collect();
                        let decided = next_view(rec.as_ref(), Group::Catalog, &all, &status);
                        if let Some(r) = &rec {
                            // A member of the last confirmed view that may
                            // lead: up, ready, on its recorded disk, and
                            // certain of its log or with every other member
                            // of that view up (ready, or known empty).
                            let intact = |m: &NodeId| r.disk_matches(m, sims[index(m)].disk);
                            let usable_confirmed = all.iter().any(|m| {
                                let s = &sims[index(m)];
                                let others = r.confirmed.as_ref().is_none_or(|c| {
                                    c.members().filter(|o| *o != m).all(|o| {
                                        let so = &sims[index(o)];
                                        so.up && (so.ready || !intact(o))
                                    })
                                });
                                s.up && s.ready && intact(m) && (!s.uncertain || others)
                                    && r.confirmed.as_ref().is_none_or(|c| c.contains(m))
                            });
                            let p = &sims[index(&r.current.primary)];
                            if !p.up && usable_confirmed {
                                prop_assert!(decided.is_some(), "stuck: {:?} {:?}", r, sims);
                            }
                            let backup_down = r.current.backups.iter().any(|b| !sims[index(b)].up);
                            // (A primary that restarted with its log's tail
                            // in doubt is replaced instead, or waited for.)
                            let p_intact = r.disk_matches(&r.current.primary, p.disk);
                            if p.up && p.ready && !p.uncertain && p_intact && backup_down {
                                prop_assert!(decided.is_some(), "dead backup kept: {:?}", r);
                            }
                        }
                        let Some(v) = decided else { continue };
                        let previous = rec.as_ref().map(|r| r.current.clone());
                        prop_assert_eq!(v.group, Group::Catalog);
                        prop_assert!(v.epoch > previous.as_ref().map_or(0, |p| p.epoch),
                            "epoch {} after {:?}", v.epoch, previous);
                        prop_assert!(!v.backups.contains(&v.primary));
                        let mut seen: Vec<_> = v.members().cloned().collect();
                        seen.sort();
                        seen.dedup();
                        prop_assert_eq!(seen.len(), v.members().count(), "duplicate in {:?}", v);
                        for m in v.members() {
                            prop_assert!(all.contains(m));
                            prop_assert!(sims[index(m)].up, "{} is down in {:?}", m, v);
                        }
                        prop_assert!(sims[index(&v.primary)].ready);
                        let new_primary = previous.as_ref().is_none_or(|p| p.primary != v.primary);
                        if new_primary {
                            // Its view start adopts the longest log of the
                            // view: that one must hold every committed entry.
                            let adopted = adopted(&sims, &v);
                            prop_assert!(sims[adopted].has_all,
                                "r{} lacks committed entries, adopted in {:?} from {:?}: {:?}",
                                adopted, v, rec, sims);
                            if let Some(c) = rec.as_ref().and_then(|r| r.confirmed.as_ref()) {
                                prop_assert!(c.contains(&v.primary));
                            }
                        }
                        let (confirmed, disks) = rec.map(|r| (r.confirmed, r.disks)).unwrap_or_default();
                        rec = Some(GroupRecord { current: v, confirmed, disks });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Whose log the primary of `v` ends with after its view start: the
    /// longest backup's if longer than its own (it adopts only a longer one).
    fn adopted(sims: &[Sim], v: &View) -> usize {
        let own = index(&v.primary);
        v.backups
            .iter()
            .map(index)
            .filter(|b| sims[*b].end > sims[own].end)
            .max_by_key(|b| sims[*b].end)
            .unwrap_or(own)
    }

    fn index(m: &NodeId) -> usize {
        m.0[1..].parse().unwrap()
    }
}
