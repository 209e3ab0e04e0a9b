//! Cache leases: how several front ends each keep a cache and reads stay
//! linearizable (docs/DESIGN.md §9; Gray and Cheriton 1989, Chubby).
//!
//! With one front end the catalog primary pushes invalidations to it and
//! waits for nothing: that front end raises its own marks before it answers
//! any write, so its cache never shows a write older than one it
//! acknowledged (`frontend/mod.rs`, "Fresh reads"). With several, a write
//! acknowledged by one front end must be seen by reads on every other, so
//! the catalog primary takes part. [`Leases`] is the primary's bookkeeping,
//! a plain struct driven by `services/catalog.rs` with the time handed in.
//!
//! # The rules
//!
//! - **Which front ends.** The configuration's list
//!   (`ReplicaConfig::frontends`: `frontend` and `other_frontends`), which
//!   `pygmy up` and `pygmy init` write for every replica. Which of them are
//!   *live* the primary learns from their heartbeats: each heartbeat names
//!   its sender (`Heartbeat::from`), and its answer is the lease. (The
//!   coordinator's registrations would need every replica to reach the
//!   coordinator; the heartbeats already reach every replica.) A front end
//!   not in the list gets no lease and so serves no cache.
//! - **Grant.** A serving catalog primary answers a heartbeat from front
//!   end F with a lease of `L - margin` (`ReplicaStatus::lease_ms`) and
//!   records it as held until `L + margin` after it answered. F counts the
//!   lease from when it *sent* the heartbeat, so F's lease always ends
//!   before the primary's record of it, clock-rate drift up to
//!   `margin / L` included. A grant is *new* (`lease_new`) when the primary
//!   held no lease of F just before: invalidations may have been skipped,
//!   so F drops its whole cache at the commit point the answer carries.
//! - **Invalidations go to every leased front end**, each with its own
//!   position in the list of pending invalidations, in lsn order, merged
//!   when several piled up. A front end whose push fails is *unreachable*:
//!   it is granted nothing (not even renewed) until a push to it
//!   succeeds, so a one-way cut cannot keep renewing a lease whose
//!   invalidations never arrive.
//! - **Release.** An lsn `n` is *released* once every front end the
//!   primary holds a lease of has every invalidation up to `n`, or its
//!   lease has run out. The primary acknowledges a write at `n`, and
//!   answers a read at commit point `n`, only once `n` is released. The
//!   wait is at most `L + margin` for a silent front end and one push round
//!   trip for the others; a read answered at `n` that waited is still
//!   linearizable (it shows the state at `n`, and every write acknowledged
//!   before it was sent is at or below `n`). Reads in this mode go to the
//!   primary only: a backup applies commits it cannot know are released.
//!   So no state reaches a client, through a write's answer or a read, while
//!   a front end may still serve a cached value older than it.
//! - **Refreshes.** After each commit that changes cached keys, the
//!   primary also records their new values (`latest`: per key, its value
//!   right after its last change and that change's lsn, read from the
//!   state as the entry is applied). Once a value's lsn is *released*, the
//!   next push to each leased front end carries it (`Invalidate::refresh`,
//!   at most once per front end: `refreshed` is how far its refreshes
//!   went), and the front end takes it exactly as the answer of a read at
//!   that lsn: it is offered to its cache, whose fill rule drops it if a
//!   later invalidation of the key came first. Why this is as safe as a
//!   read: the value is committed state at its lsn, and a read answered
//!   there would have been released too, so no client can see it while a
//!   front end may still serve something older. Only released values go
//!   out: a value a front end served before every other had the
//!   invalidation would let one client see a write another front end's
//!   client does not yet. So after a buy each front end misses the book
//!   only between the invalidation and the refresh (one push later),
//!   instead of until one of its clients reads it from the primary.
//! - **A new primary** waits [`Leases::takeover`] after it starts serving
//!   before it releases anything: `2 × (L + margin) + hop_timeout`. Why that
//!   covers every lease an old primary P granted: P grants only while every
//!   backup of its view has fetched from it in its epoch within the last
//!   `L` ([`Leases::may_grant`]). The new primary was one of those backups
//!   and stopped fetching from P when it accepted its own view, before it
//!   began serving; so P's last grant came at most `L` after P received
//!   that last fetch, which arrived at most `hop_timeout` after it was sent
//!   (the delay of a message that is delivered at all is assumed below a
//!   hop timeout), and the lease it granted ended at most `L` after that.
//!   Margins cover drift. A primary that served the epoch just before its
//!   new one without stepping down in between holds its own leases'
//!   records and waits no takeover.
//! - **A deposed primary answers no read.** Leases bound the cache hits
//!   of a front end; its misses go to the primary of the view it holds,
//!   and a front end cut off from the coordinator holds old views. The
//!   primary P of epoch `e` that such a front end still reaches may have
//!   been deposed without knowing it (it learns views from the front
//!   ends' heartbeats, and this one tells it the old view): cut off from
//!   its backups it commits nothing, but a read needs no commit, and once
//!   the front end's lease has lapsed every read it has is a miss. So P
//!   answers a read, once its lsn is released, only if it still serves
//!   `e` and [`Leases::may_grant`] holds: every backup fetched from it in
//!   `e` within the last `L` — the order primary's tenure
//!   (`services/tenure.rs`), whose argument carries over word for word:
//!   the first primary Q of a newer confirmed view is P itself (then P no
//!   longer serves `e` and declines) or was a backup of `e` and stopped
//!   fetching from P before that view's confirmation at `c`,
//!   so P answers nothing after `c + hop_timeout + L`, while every write
//!   of a newer epoch is acknowledged only once its lsn is released,
//!   after Q's (or a later primary's) takeover, `c + 2 × (L + margin) +
//!   hop_timeout` at the earliest. So a write acknowledged before a read
//!   was sent was committed in `e` (P's state has it) or the read was sent
//!   after P stopped answering. P checks after reading its state and
//!   waiting for the release, so the check covers the time it answers.
//!   It costs nothing while the backups pull (a caught-up backup's fetch
//!   is held at most `poll_wait`, well within L); while a backup is down
//!   and not yet out of the view, the primary answers no read (it grants
//!   no lease then either).
//!
//! # Caveats
//!
//! - The argument for a new primary assumes a message is delivered within
//!   `hop_timeout` of being sent, or not at all, and clock rates within
//!   `margin / L` of each other; neither is checked.
//! - A new primary pauses catalog writes and reads for the takeover time
//!   after each view change that moves the primary (about 1.4 s in the
//!   simulation, 3.2 s with `pygmy up`'s defaults).

use crate::services::tenure::Tenure;
use crate::transport::message::{QueryResult, Refresh, Request};
use crate::types::{CacheKey, Epoch, Lsn, NodeId};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// A catalog replica's cache-lease settings, when several front ends each
/// keep a cache (see the module docs). `pygmy up` derives them from the
/// heartbeat interval; without them (one front end) nothing is leased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The lease period L granted to every front end the replica knows of
    /// (`ReplicaConfig::frontends`), each of which then gets the
    /// invalidations. In the order group the same L bounds the order
    /// primary's tenure (`services/tenure.rs`): it answers order reads only
    /// while every backup fetched from it within L.
    pub lease: Duration,
    /// The allowance for clock-rate drift: a front end counts its lease as
    /// `lease - margin` from when it sent the heartbeat, the primary as
    /// `lease + margin` from when it answered it.
    pub margin: Duration,
    /// Deliberately broken, for the simulation's own tests: the catalog
    /// primary does not wait out the lease of a silent front end (one whose
    /// push failed or has gone unanswered for 20 ms): it acknowledges as if
    /// that front end had no lease. Never set otherwise.
    pub unsafe_no_wait: bool,
    /// Deliberately broken, for the simulation's own tests: the catalog
    /// primary answers reads without checking that every backup still
    /// follows it ([`Leases::may_grant`]), so a deposed primary that a
    /// front end with stale views still reaches answers its misses from
    /// old state. Never set otherwise.
    pub unsafe_untenured_reads: bool,
}

/// The lease periods (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Periods {
    /// L.
    pub lease: Duration,
    /// The drift allowance.
    pub margin: Duration,
    /// The longest delay of a delivered message assumed.
    pub hop: Duration,
}

/// What the primary knows of one front end.
#[derive(Debug, Default)]
struct FrontEndLease {
    /// When this primary last granted it a lease (by its own clock).
    granted: Option<Instant>,
    /// Every invalidation up to this lsn has reached it.
    delivered: Lsn,
    /// The last push to it failed: no grant until one succeeds.
    unreachable: bool,
    /// When the push in flight to it was sent.
    pushing: Option<Instant>,
    /// Every refresh up to this lsn has reached it (or is superseded).
    refreshed: Lsn,
}

/// One push to a front end (see [`Leases::to_push`]).
#[derive(Debug)]
pub struct Push {
    /// The `Invalidate` to send.
    pub request: Request,
    /// The invalidations it carries go up to this lsn.
    pub lsn: Lsn,
    /// The refreshes it carries cover every value up to this lsn.
    pub refreshed: Lsn,
}

/// Deliberately broken mode only: how long a push may stay unanswered
/// before the front end is taken for silent and its lease is not waited
/// out.
const SILENT: Duration = Duration::from_millis(20);

/// The catalog primary's cache-lease bookkeeping (see the module docs).
#[derive(Debug)]
pub struct Leases {
    periods: Periods,
    frontends: BTreeMap<NodeId, FrontEndLease>,
    /// Invalidations committed while some front end was leased and not
    /// yet delivered to every leased one, in lsn order. Bounded by the
    /// writes of one lease period: an entry is dropped once every front
    /// end leased has it or has lost its lease.
    pending: VecDeque<(Vec<CacheKey>, Lsn)>,
    /// Per key changed while some front end was leased, its value after
    /// its last change and that change's lsn: what refreshes carry. At
    /// most one entry per key; dropped once every leased front end has it.
    latest: BTreeMap<CacheKey, (QueryResult, Lsn)>,
    /// The epoch served, its takeover and the backups' fetches: the same
    /// record as the order primary's (`tenure.rs`), with the same periods.
    tenure: Tenure,
    /// Deliberately broken: an unreachable front end's lease is not waited
    /// out.
    unsafe_no_wait: bool,
    /// Deliberately broken: reads are answered without
    /// [`may_grant`](Self::may_grant).
    unsafe_untenured_reads: bool,
}

impl Leases {
    pub fn new<'a>(
        frontends: impl Iterator<Item = &'a NodeId>,
        periods: Periods,
        unsafe_no_wait: bool,
    ) -> Self {
        Leases {
            periods,
            frontends: frontends
                .map(|f| (f.clone(), FrontEndLease::default()))
                .collect(),
            pending: VecDeque::new(),
            latest: BTreeMap::new(),
            tenure: Tenure::new(periods.lease, periods.margin, periods.hop),
            unsafe_no_wait,
            unsafe_untenured_reads: false,
        }
    }

    /// Deliberately broken, for the simulation's own tests: see
    /// [`LeaseConfig::unsafe_untenured_reads`].
    pub fn with_unsafe_untenured_reads(mut self, on: bool) -> Self {
        self.unsafe_untenured_reads = on;
        self
    }

    /// Whether reads are answered without [`may_grant`](Self::may_grant)
    /// (deliberately broken mode only).
    pub fn unsafe_untenured_reads(&self) -> bool {
        self.unsafe_untenured_reads
    }

    /// How long a new primary waits before it releases anything.
    pub fn takeover(&self) -> Duration {
        self.tenure.takeover()
    }

    /// The front ends in the configuration.
    pub fn frontends(&self) -> impl Iterator<Item = &NodeId> {
        self.frontends.keys()
    }

    fn held_until(&self, f: &FrontEndLease) -> Option<Instant> {
        f.granted
            .map(|g| g + self.periods.lease + self.periods.margin)
    }

    /// Whether the primary holds a lease of `fe` at `now` (as far as
    /// releasing is concerned).
    fn holds(&self, f: &FrontEndLease, now: Instant) -> bool {
        if self.unsafe_no_wait && (f.unreachable || self.silent_since(f).is_some_and(|t| now >= t))
        {
            return false;
        }
        self.held_until(f).is_some_and(|until| now < until)
    }

    /// Deliberately broken mode: from when a front end with a push in
    /// flight counts as silent.
    fn silent_since(&self, f: &FrontEndLease) -> Option<Instant> {
        f.pushing.map(|sent| sent + SILENT)
    }

    /// When `f` stops blocking a release without a push arriving.
    fn blocks_until(&self, f: &FrontEndLease) -> Option<Instant> {
        let until = self.held_until(f)?;
        match self.silent_since(f) {
            Some(silent) if self.unsafe_no_wait => Some(until.min(silent)),
            _ => Some(until),
        }
    }

    /// This replica serves `epoch` (seen at `now`): starts its takeover
    /// wait the first time, unless it served the epoch just before.
    /// (After the epoch just before, its own leases carry on: it holds
    /// their records.)
    pub fn serving(&mut self, epoch: Epoch, now: Instant) {
        self.tenure.serving(epoch, now);
    }

    /// The replica gave up its role: whatever it granted or queued is no
    /// longer its to act on, and a later epoch waits its takeover.
    pub fn stepped_down(&mut self) {
        for f in self.frontends.values_mut() {
            *f = FrontEndLease::default();
        }
        self.pending.clear();
        self.latest.clear();
        self.tenure.stepped_down();
    }

    /// A backup fetched in `epoch`.
    pub fn heard(&mut self, backup: &NodeId, epoch: Epoch, now: Instant) {
        self.tenure.heard(backup, epoch, now);
    }

    /// Whether a primary of `epoch` with these backups may grant leases,
    /// or answer a read: every backup fetched from it in its epoch within
    /// the last `L` (see the module docs: this bounds what a deposed
    /// primary can grant, and when it can answer).
    pub fn may_grant(&self, epoch: Epoch, backups: &[NodeId], now: Instant) -> bool {
        self.tenure.followed(epoch, backups, now)
    }

    /// Grants `fe` a lease at `now`. Returns `None` when it may have none
    /// (not in the configuration, or unreachable), else whether the lease
    /// is new; for a new one the caller then calls [`fresh`](Self::fresh)
    /// with the commit point its answer carries.
    pub fn grant(&mut self, fe: &NodeId, now: Instant) -> Option<bool> {
        let held = {
            let f = self.frontends.get(fe)?;
            if f.unreachable {
                return None;
            }
            self.held_until(f).is_some_and(|until| now < until)
        };
        let f = self.frontends.get_mut(fe)?;
        f.granted = Some(now);
        Some(!held)
    }

    /// A new lease's answer carries commit point `commit`: the front end
    /// drops its cache at it, so nothing up to it need be pushed.
    pub fn fresh(&mut self, fe: &NodeId, commit: Lsn) {
        if let Some(f) = self.frontends.get_mut(fe) {
            f.delivered = f.delivered.max(commit);
            f.refreshed = f.refreshed.max(commit);
        }
    }

    /// The lease period a front end is told (it counts it from its send).
    pub fn granted_ms(&self) -> u64 {
        let told = self.periods.lease.saturating_sub(self.periods.margin);
        u64::try_from(told.as_millis()).unwrap_or(u64::MAX).max(1)
    }

    /// An entry at `lsn` made `keys` stale, and left them with `values`
    /// (read from the state right after it): queued if any front end is
    /// leased (one that is not gets a new lease, and drops its cache,
    /// before it serves it again).
    pub fn committed(
        &mut self,
        keys: Vec<CacheKey>,
        values: Vec<(CacheKey, QueryResult)>,
        lsn: Lsn,
        now: Instant,
    ) {
        if self.any_leased(now) && !keys.is_empty() {
            self.pending.push_back((keys, lsn));
            for (key, value) in values {
                self.latest.insert(key, (value, lsn));
            }
        }
    }

    /// Whether any front end is leased at `now` (as far as queueing is
    /// concerned).
    pub fn any_leased(&self, now: Instant) -> bool {
        self.frontends
            .values()
            .any(|f| self.held_until(f).is_some_and(|u| now < u))
    }

    /// The highest lsn released at `now` (see [`released`](Self::released)),
    /// `None` when none is (no known epoch, or a takeover under way).
    fn release_point(&self, now: Instant) -> Option<Lsn> {
        self.tenure.settled(now).ok()?;
        let blocked = self
            .frontends
            .values()
            .filter(|f| self.holds(f, now))
            .filter_map(|f| self.pending.iter().find(|(_, l)| *l > f.delivered))
            .map(|(_, l)| *l)
            .min();
        Some(blocked.map_or(Lsn::MAX, |l| l - 1))
    }

    /// What to push to `fe` now: every pending invalidation it lacks,
    /// merged, and the refreshes it lacks whose lsn is released, as one
    /// `Invalidate`. `None` when it lacks none or is not leased. An
    /// unreachable front end gets an empty one, as a probe.
    pub fn to_push(&self, fe: &NodeId, now: Instant) -> Option<Push> {
        let f = self.frontends.get(fe)?;
        let leased = self.held_until(f).is_some_and(|u| now < u);
        let mut keys: Vec<CacheKey> = Vec::new();
        let mut lsn = f.delivered;
        let mut refresh = Vec::new();
        let mut refreshed = f.refreshed;
        if leased {
            for (k, l) in self.pending.iter().filter(|(_, l)| *l > f.delivered) {
                keys.extend(k.iter().cloned());
                lsn = lsn.max(*l);
            }
            if let Some(point) = self.release_point(now) {
                for (key, (value, l)) in &self.latest {
                    if *l > f.refreshed && *l <= point {
                        refresh.push(Refresh {
                            key: key.clone(),
                            value: value.clone(),
                            lsn: *l,
                        });
                        refreshed = refreshed.max(*l);
                    }
                }
            }
        }
        if keys.is_empty() && refresh.is_empty() && !f.unreachable {
            return None;
        }
        keys.sort();
        keys.dedup();
        Some(Push {
            request: Request::Invalidate { keys, lsn, refresh },
            lsn,
            refreshed,
        })
    }

    /// A push to `fe` leaves at `now`.
    pub fn pushing(&mut self, fe: &NodeId, now: Instant) {
        if let Some(f) = self.frontends.get_mut(fe) {
            f.pushing = Some(now);
        }
    }

    /// A push up to `lsn`, with refreshes up to `refreshed`, reached `fe`.
    pub fn delivered(&mut self, fe: &NodeId, lsn: Lsn, refreshed: Lsn, now: Instant) {
        if let Some(f) = self.frontends.get_mut(fe) {
            f.delivered = f.delivered.max(lsn);
            f.refreshed = f.refreshed.max(refreshed);
            f.unreachable = false;
            f.pushing = None;
        }
        self.trim(now);
    }

    /// A push to `fe` failed.
    pub fn failed(&mut self, fe: &NodeId) {
        if let Some(f) = self.frontends.get_mut(fe) {
            f.unreachable = true;
            f.pushing = None;
        }
    }

    /// Drops the invalidations and refreshes every leased front end has
    /// (all of them when none is leased).
    pub fn trim(&mut self, now: Instant) {
        let leased = || {
            self.frontends
                .values()
                .filter(|f| self.held_until(f).is_some_and(|u| now < u))
        };
        let low = leased().map(|f| f.delivered).min();
        let refreshed = leased().map(|f| f.refreshed).min();
        match low {
            Some(low) => {
                while self.pending.front().is_some_and(|(_, l)| *l <= low) {
                    self.pending.pop_front();
                }
            }
            None => self.pending.clear(),
        }
        match refreshed {
            Some(low) => self.latest.retain(|_, (_, l)| *l > low),
            None => self.latest.clear(),
        }
    }

    /// Whether `lsn` is released at `now` (see the module docs): `Ok`, or
    /// `Err` with the next time that may change without a push arriving
    /// (a lease running out, the takeover ending).
    pub fn released(&self, lsn: Lsn, now: Instant) -> Result<(), Instant> {
        // Not known to serve (the caller marks it first), or a takeover
        // under way.
        self.tenure.settled(now)?;
        let blocking = self
            .frontends
            .values()
            .filter(|f| self.holds(f, now))
            .filter(|f| {
                self.pending
                    .iter()
                    .any(|(_, l)| *l > f.delivered && *l <= lsn)
            })
            .filter_map(|f| self.blocks_until(f))
            .min();
        match blocking {
            Some(until) => Err(until),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn periods() -> Periods {
        Periods {
            lease: Duration::from_millis(400),
            margin: Duration::from_millis(40),
            hop: Duration::from_millis(500),
        }
    }

    fn leases(unsafe_no_wait: bool) -> (Leases, NodeId, NodeId) {
        let (a, b) = (NodeId::new("fe-a"), NodeId::new("fe-b"));
        let l = Leases::new([a.clone(), b.clone()].iter(), periods(), unsafe_no_wait);
        (l, a, b)
    }

    fn key() -> Vec<CacheKey> {
        vec![CacheKey::Lookup(1)]
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_waits_for_every_leased_front_end_then_not_for_a_silent_ones_lapsed_lease() {
        let (mut l, a, b) = leases(false);
        let t0 = Instant::now();
        l.serving(2, t0);
        let after = t0 + l.takeover();
        assert_eq!(l.grant(&a, after), Some(true));
        assert_eq!(l.grant(&b, after), Some(true));
        l.committed(key(), Vec::new(), 5, after);
        // Neither has it: not released until b's lease would run out.
        let b_until = after + periods().lease + periods().margin;
        assert_eq!(l.released(5, after), Err(b_until));
        l.delivered(&a, 5, 0, after);
        assert_eq!(l.released(5, after), Err(b_until));
        // b stays silent: released once its lease has run out, not before.
        assert!(l.released(5, b_until - Duration::from_millis(1)).is_err());
        assert_eq!(l.released(5, b_until), Ok(()));
        // An lsn with nothing pending below it is released at once.
        assert_eq!(l.released(4, after), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refresh_goes_out_only_once_its_lsn_is_released_and_only_once() {
        let (mut l, a, b) = leases(false);
        let t0 = Instant::now();
        l.serving(2, t0);
        let now = t0 + l.takeover();
        assert_eq!(l.grant(&a, now), Some(true));
        assert_eq!(l.grant(&b, now), Some(true));
        let book = QueryResult::Book(None);
        l.committed(key(), vec![(CacheKey::Lookup(1), book.clone())], 5, now);
        let refresh = |p: &Push| match &p.request {
            Request::Invalidate { refresh, .. } => refresh.len(),
            _ => usize::MAX,
        };
        // Not released (neither has the invalidation): the push carries
        // the invalidation and no value.
        let push = l.to_push(&a, now).expect("a lacks lsn 5");
        assert_eq!((push.lsn, refresh(&push)), (5, 0));
        l.delivered(&a, push.lsn, push.refreshed, now);
        // b still lacks it: a gets no value yet.
        assert!(l.to_push(&a, now).is_none());
        let push = l.to_push(&b, now).expect("b lacks lsn 5");
        l.delivered(&b, push.lsn, push.refreshed, now);
        // Released: each gets the value once.
        for fe in [&a, &b] {
            let push = l.to_push(fe, now).expect("a refresh is due");
            assert_eq!(refresh(&push), 1);
            l.delivered(fe, push.lsn, push.refreshed, now);
            assert!(l.to_push(fe, now).is_none());
        }
        assert!(l.latest.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_primary_releases_nothing_before_its_takeover_unless_it_served_the_epoch_before()
    {
        let (mut l, _, _) = leases(false);
        let t0 = Instant::now();
        l.serving(3, t0);
        assert_eq!(l.released(1, t0), Err(t0 + l.takeover()));
        assert_eq!(l.released(1, t0 + l.takeover()), Ok(()));
        l.serving(4, t0 + l.takeover());
        assert_eq!(l.released(1, t0 + l.takeover()), Ok(()));
        l.stepped_down();
        l.serving(5, t0 + l.takeover());
        assert!(l.released(1, t0 + l.takeover()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_front_end_gets_no_lease_and_is_waited_out_unless_broken() {
        for broken in [false, true] {
            let (mut l, a, _) = leases(broken);
            let t0 = Instant::now();
            l.serving(1, t0);
            let now = t0 + l.takeover();
            assert_eq!(l.grant(&a, now), Some(true));
            l.committed(key(), Vec::new(), 7, now);
            l.failed(&a);
            assert_eq!(l.grant(&a, now), None);
            assert_eq!(l.released(7, now).is_ok(), broken);
            // A probe goes to it even with nothing to say.
            assert!(l.to_push(&a, now).is_some());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_broken_mode_stops_waiting_for_a_push_left_unanswered() {
        for broken in [false, true] {
            let (mut l, a, _) = leases(broken);
            let t0 = Instant::now();
            l.serving(1, t0);
            let now = t0 + l.takeover();
            assert_eq!(l.grant(&a, now), Some(true));
            l.committed(key(), Vec::new(), 7, now);
            l.pushing(&a, now);
            assert!(l.released(7, now).is_err());
            assert_eq!(l.released(7, now + SILENT).is_ok(), broken);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewed_lease_is_not_new_and_a_lapsed_one_is() {
        let (mut l, a, _) = leases(false);
        let t0 = Instant::now();
        assert_eq!(l.grant(&a, t0), Some(true));
        assert_eq!(l.grant(&a, t0 + Duration::from_millis(100)), Some(false));
        let lapsed = t0 + Duration::from_millis(100) + periods().lease + periods().margin;
        assert_eq!(l.grant(&a, lapsed), Some(true));
        assert_eq!(l.grant(&NodeId::new("stranger"), t0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deposed_primary_grants_only_while_every_backup_fetched_within_a_lease() {
        let (mut l, _, _) = leases(false);
        let t0 = Instant::now();
        let backup = NodeId::new("catalog-2");
        assert!(!l.may_grant(2, std::slice::from_ref(&backup), t0));
        l.heard(&backup, 2, t0);
        assert!(l.may_grant(2, std::slice::from_ref(&backup), t0 + periods().lease));
        assert!(!l.may_grant(2, std::slice::from_ref(&backup), t0 + periods().lease * 2));
        assert!(!l.may_grant(3, std::slice::from_ref(&backup), t0));
        assert!(l.may_grant(2, &[], t0 + periods().lease * 9));
    }
}
