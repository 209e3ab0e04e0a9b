//! The order primary's tenure: when, with several front ends, it may
//! answer a read or acknowledge a buy (docs/DESIGN.md §9, "Order reads
//! with several front ends").
//!
//! With one front end, an order read is safe at any member of the current
//! view that has reached the front end's `seen`: that front end acknowledged
//! every order there is, so `seen` covers them all, and only it changes
//! views. With several, a front end cut off from the coordinator keeps the
//! views it holds, and may send reads to an order primary that another
//! front end's view change has deposed. The deposed primary does not know
//! it: it learns views from the front ends' heartbeats, and the one front
//! end that still reaches it tells it the old view. It cannot commit (its
//! backups refuse its epoch), but a read needs no commit: it would answer
//! "no such order" about an order the new primary acknowledged through
//! another front end. [`Tenure`] is the primary's bookkeeping of the two
//! rules that exclude that, a plain struct driven by `services/buy.rs`
//! with the time handed in. They are the catalog's lease rules
//! (`leases.rs`) without the front ends' caches.
//!
//! # The rules
//!
//! - **Answer only while every backup still follows.** A primary of epoch
//!   `e` answers a read only while every backup of its view has fetched
//!   from it in epoch `e` within the last `L` ([`Tenure::may_answer`]),
//!   where L is `LeaseConfig::lease`. A backup sends a fetch in epoch `e`
//!   only while it holds view `e` (`backup.rs` checks the epoch just
//!   before sending), so the primary heard, at most `L` ago, from each
//!   backup a message sent at most `hop_timeout` before it arrived while
//!   that backup had accepted no newer view.
//! - **A new primary waits its takeover.** A primary that starts serving
//!   an epoch (unless it served the epoch just before it without stepping
//!   down in between) neither acknowledges a buy nor answers a read for
//!   [`Tenure::takeover`] = `2 × (L + margin) + hop_timeout` after it
//!   first saw itself serving — the catalog primary's takeover.
//!
//! # Why reads stay linearizable
//!
//! Say primary P of epoch `e` answers a read at time `t` (its state then)
//! and an order W was acknowledged before the read was sent. If W was
//! committed in epoch `e`, P committed it, so P's state at `t` has it. Else
//! W was committed in a later epoch, after some view newer than `e` was
//! confirmed; let `f` be the first confirmed one, at time `c`. The view
//! service promotes only a member of the last confirmed view, `e`'s, so
//! `f`'s primary Q is P itself — then P accepted `f` before `c` and no
//! longer answers as `e`'s primary — or a backup of `e`. Q accepted `f`
//! before `c` and sent no fetch in `e` after, so P received Q's last one
//! before `c + hop`, and by the first rule answered nothing as `e`'s
//! primary after `c + hop + L`. Every primary of an epoch above `e` starts
//! serving after `c` (its view is confirmed first, and `f` was the first),
//! so by the second rule W was acknowledged after `c + takeover`, which
//! is later than `c + hop + L` by more than the margins' worth of clock
//! drift: after `t`. So W cannot have been acknowledged before the read
//! was sent. The same holds for a read that finds an order: only a
//! committed one can be found, so a later read, at any primary allowed to
//! answer, finds it too.
//!
//! # Cost
//!
//! Nothing per read while the backups pull: a caught-up backup's fetch is
//! held at most `poll_wait` and the next one follows at once, well within
//! L. A new primary answers nothing for the takeover (1.38 s in the
//! simulation) after a view change that moves the primary, as the
//! catalog does; with one front end (no `lease`) nothing of this runs.
//!
//! # Caveats
//!
//! As for the catalog's leases: a message is assumed delivered within
//! `hop_timeout` of being sent or not at all, and clock rates within
//! `margin / L` of each other; neither is checked.

use crate::types::{Epoch, NodeId};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The order primary's tenure (see the module docs).
#[derive(Debug)]
pub struct Tenure {
    /// L: how recent every backup's fetch must be.
    lease: Duration,
    /// The drift allowance.
    margin: Duration,
    /// The longest delay of a delivered message assumed.
    hop: Duration,
    /// The epoch this replica serves and when it was first seen serving
    /// it; `None` while it is not known to serve.
    serving: Option<(Epoch, Instant)>,
    /// Whether it must wait the takeover in `serving`'s epoch.
    takeover: bool,
    /// Per backup, the epoch and time of its latest fetch.
    heard: BTreeMap<NodeId, (Epoch, Instant)>,
}

impl Tenure {
    pub fn new(lease: Duration, margin: Duration, hop: Duration) -> Self {
        Tenure {
            lease,
            margin,
            hop,
            serving: None,
            takeover: true,
            heard: BTreeMap::new(),
        }
    }

    /// How long a new primary waits before it answers anything.
    pub fn takeover(&self) -> Duration {
        (self.lease + self.margin) * 2 + self.hop
    }

    /// This replica serves `epoch` (seen at `now`): starts its takeover
    /// the first time, unless it served the epoch just before.
    pub fn serving(&mut self, epoch: Epoch, now: Instant) {
        match self.serving {
            Some((e, _)) if e == epoch => {}
            Some((e, _)) if e + 1 == epoch => {
                // Nobody else served between my two epochs.
                self.serving = Some((epoch, now));
                self.takeover = false;
            }
            _ => {
                self.serving = Some((epoch, now));
                self.takeover = true;
            }
        }
    }

    /// The replica gave up its role: a later epoch waits its takeover.
    pub fn stepped_down(&mut self) {
        self.serving = None;
        self.heard.clear();
    }

    /// A backup fetched in `epoch` at `now`.
    pub fn heard(&mut self, backup: &NodeId, epoch: Epoch, now: Instant) {
        self.heard.insert(backup.clone(), (epoch, now));
    }

    /// Whether the takeover is over at `now`: `Ok`, or `Err` with when it
    /// ends. The caller marks [`serving`](Self::serving) first.
    pub fn settled(&self, now: Instant) -> Result<(), Instant> {
        match self.serving {
            None => Err(now + self.takeover()),
            Some((_, since)) if self.takeover && now < since + self.takeover() => {
                Err(since + self.takeover())
            }
            Some(_) => Ok(()),
        }
    }

    /// Whether a primary of `epoch` with these backups may answer a read
    /// at `now`: its takeover is over and every backup fetched from it in
    /// its epoch within the last L.
    pub fn may_answer(&self, epoch: Epoch, backups: &[NodeId], now: Instant) -> bool {
        self.settled(now).is_ok() && self.followed(epoch, backups, now)
    }

    /// Whether every one of `backups` fetched from this primary in `epoch`
    /// within the last L before `now` (the catalog's leases ask this alone
    /// before granting one).
    pub fn followed(&self, epoch: Epoch, backups: &[NodeId], now: Instant) -> bool {
        backups.iter().all(|b| {
            self.heard
                .get(b)
                .is_some_and(|(e, at)| *e == epoch && now.duration_since(*at) <= self.lease)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenure() -> Tenure {
        Tenure::new(
            Duration::from_millis(400),
            Duration::from_millis(40),
            Duration::from_millis(500),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_primary_answers_only_while_every_backup_fetched_in_its_epoch_within_l() {
        let mut t = tenure();
        let t0 = Instant::now();
        let backup = NodeId::new("order-2");
        let backups = std::slice::from_ref(&backup);
        t.serving(3, t0);
        let after = t0 + t.takeover();
        assert!(!t.may_answer(3, backups, after), "never heard");
        t.heard(&backup, 3, after);
        assert!(t.may_answer(3, backups, after));
        assert!(t.may_answer(3, backups, after + Duration::from_millis(400)));
        assert!(!t.may_answer(3, backups, after + Duration::from_millis(401)));
        // A fetch of another epoch does not count.
        t.heard(&backup, 2, after);
        assert!(!t.may_answer(3, backups, after));
        // Without backups, only the takeover counts.
        assert!(t.may_answer(3, &[], after));
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_primary_answers_nothing_before_its_takeover_unless_it_served_the_epoch_before() {
        let mut t = tenure();
        let t0 = Instant::now();
        t.serving(3, t0);
        assert_eq!(t.settled(t0), Err(t0 + t.takeover()));
        assert!(!t.may_answer(3, &[], t0 + t.takeover() - Duration::from_millis(1)));
        assert_eq!(t.settled(t0 + t.takeover()), Ok(()));
        t.serving(4, t0 + t.takeover());
        assert_eq!(t.settled(t0 + t.takeover()), Ok(()));
        t.stepped_down();
        t.serving(5, t0 + t.takeover());
        assert!(t.settled(t0 + t.takeover()).is_err());
        // Serving a later epoch that skips one waits too.
        let mut t = tenure();
        t.serving(3, t0);
        t.serving(5, t0 + t.takeover());
        assert!(t.settled(t0 + t.takeover()).is_err());
    }
}
