//! Buying exactly once, across the two groups, and keeping the front end's
//! cache honest.
//!
//! The order primary appends `Begin(request)` and, without waiting for it
//! to commit, asks the catalog primary to `Reserve(request)` (idempotent: a
//! repeated request id gets the first outcome). Once both the `Begin` is
//! committed and the reservation answered, it answers the client, and
//! commits `Finish(request, outcome)` in the background (the answer is
//! decided and durable by then; see `Answer::Early`). The client waits
//! for one commit in each group, side by side, rather than one after the
//! other. Any step may be cut off by a crash; because every step is
//! idempotent, redoing the rest is always safe, and the finisher redoes it
//! for every buy left pending — including those a new order primary
//! inherits. A client retrying with the same request id gets the same
//! single order.
//!
//! A crash can also lose a `Begin` whose reservation the catalog made:
//! copies taken for a buy the order log never learnt of. So a new order
//! primary, before it tells the catalog to forget anything, sends `Fence`
//! with its epoch: from then on the catalog refuses reservations asked for
//! by older epochs, and it lists the ones they made that it still holds.
//! The new primary records each buy it does not know (a `Begin`, then the
//! listed outcome as its `Finish`): the lost buy becomes an order, as if
//! its `Begin` had survived, and its client (never answered) gets that
//! order on a retry.
//!
//! Every `finish_interval` the order primary also sends the catalog
//! `Forget { below }`, the lowest order-log lsn of a buy still pending: the
//! catalog drops the reservations of the buys below it and refuses their
//! late duplicates, so its dedupe table holds only the buys in flight. The
//! primary's own reservations are never below it: their `Begin` is pending,
//! or not yet committed and so above the commit point the mark is bounded
//! by.
//!
//! A request id (the client's `Idempotency-Key`) names one buy: its item
//! and quantity. The ledger keeps what each id asked for (pending, ordered
//! or refused), so a request arriving under a known id with another item
//! or quantity is refused as `KeyReused` (422) and buys nothing, on this
//! primary or any later one; the check is repeated once the `Begin` is
//! committed and the catalog has answered, in case another request under
//! the id got there first. While a buy runs on this primary, a different
//! buy under its id is refused at once as `Conflict` (409); the same buy
//! again joins it.
//!
//! Under load, the reservations bound for the catalog primary share RPCs
//! (`transport::coalesce`, at most [`RESERVE_SLOTS`] in flight): one
//! request, one wake-up and one catalog commit for many buys.
//!
//! The catalog primary pushes `(keys, lsn)` invalidations for every committed
//! change to the front end, in order, retrying until delivered.
//!
//! With several front ends (`ServiceConfig::leases` set), the order primary
//! answers order reads, and acknowledges buys, only within its
//! [`Tenure`](super::tenure): every backup of its view fetched from it in
//! its epoch within the last lease period, and a new primary's takeover is
//! over. A deposed primary that a front end with stale views still
//! reaches so answers no read that misses an order acknowledged through
//! another front end (`tenure.rs` has the argument).

use crate::error::{Error, Result};
use crate::replication::{Replica, Service};
use crate::services::leases::LeaseConfig;
use crate::services::tenure::Tenure;
use crate::state::command::{
    BuyStatus, CatalogCommand, CatalogOutcome, Command, Inherited, OrderCommand, Outcome,
    Rejection, Reservation,
};
use crate::state::orders::OrderLedger;
use crate::state::State;
use crate::transport::coalesce::{self, Coalescer};
use crate::transport::message::{Query, QueryResult, Request, Response};
use crate::transport::Transport;
use crate::types::{Epoch, Group, ItemId, Lsn, NodeId, OrderId, RequestId};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// When [`Replica::record`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// As soon as the buy's `Begin` is committed and the catalog has
    /// answered the reservation: the `Begin` (with its order id and
    /// timestamp) and the reservation are both durable then, and the
    /// catalog gives a repeated reservation the same answer while the buy
    /// is pending, so whoever records the `Finish` records the order this
    /// answer names: one commit fewer on the client's path. Reads of an
    /// order still being finished wait for it (`Replica::read_order`).
    Early,
    /// Once the `Finish` is committed (the finisher: nobody is waiting).
    Recorded,
}

/// A buy to reserve for: its request id, item and quantity, the lsn of its
/// `Begin` and the order epoch asking.
struct Buy {
    request: RequestId,
    item: ItemId,
    qty: u64,
    begin: Lsn,
    epoch: Epoch,
}

impl Buy {
    /// Buy `request` as the ledger holds it while pending (its first
    /// `Begin`'s item, quantity and lsn), asked for by `epoch`.
    fn pending(ledger: &OrderLedger, request: &str, epoch: Epoch) -> Option<Buy> {
        let Some(BuyStatus::Pending { item, qty, .. }) = ledger.status(request) else {
            return None;
        };
        Some(Buy {
            request: request.to_string(),
            item,
            qty,
            begin: ledger.begun(request)?,
            epoch,
        })
    }
}

/// Whether a buy that asked for `asked` (item, and quantity where known)
/// is the buy of `item` × `qty`; nothing known matches anything.
fn same_buy(asked: Option<(ItemId, Option<u64>)>, item: ItemId, qty: u64) -> bool {
    match asked {
        None => true,
        Some((a_item, a_qty)) => a_item == item && a_qty.is_none_or(|a| a == qty),
    }
}

/// The answer to a request id reused for another buy. It says nothing of
/// the other buy: whoever holds a key learns nothing more from it.
fn key_reused() -> Error {
    Error::KeyReused(
        "this Idempotency-Key was already used for a different buy (another item or quantity); \
         nothing was bought: use a new key"
            .into(),
    )
}

/// A buy running on this order primary, by request id: how many requests
/// for it are running, and what it is.
type BuysInFlight = std::collections::HashMap<RequestId, ((ItemId, u64), usize)>;

/// The order service's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderConfig {
    /// How long a buy may take inside the order primary before it answers
    /// "unavailable" (the buy goes on in the background); also how long an
    /// order read waits for a buy still being finished.
    pub buy_deadline: Duration,
    /// How often the order primary looks for pending buys to finish.
    pub finish_interval: Duration,
    /// Deliberately broken, for the simulation's own tests: the order
    /// primary tells the catalog to forget every buy, pending ones too, so
    /// a pending buy's retried reservation is refused. Never set otherwise.
    pub unsafe_forget_pending: bool,
    /// Deliberately broken, for the simulation's own tests: a new order
    /// primary neither fences the catalog nor records the buys an older
    /// epoch reserved for but lost, so their copies can be forgotten with no
    /// order. Never set otherwise.
    pub unsafe_skip_reconcile: bool,
    /// Deliberately broken, for the simulation's own tests: with leases,
    /// the order primary answers order reads (and acknowledges buys)
    /// without its tenure (`services/tenure.rs`), so a deposed primary
    /// answers reads. Never set otherwise.
    pub unsafe_untenured_order_reads: bool,
}

impl Default for OrderConfig {
    /// Defaults fit for a LAN or loopback cluster.
    fn default() -> Self {
        OrderConfig {
            buy_deadline: Duration::from_millis(1500),
            finish_interval: Duration::from_millis(500),
            unsafe_forget_pending: false,
            unsafe_skip_reconcile: false,
            unsafe_untenured_order_reads: false,
        }
    }
}

/// Reservation RPCs in flight to the catalog primary (see
/// `transport::coalesce`): reservations beyond them queue and share the
/// next RPC. Measured in docs/BENCHMARKS.md, "Buys batched per hop".
pub const RESERVE_SLOTS: usize = 2;

/// The order group's service: the buy saga, the finisher and the order
/// reads (see the module docs).
pub struct OrderService {
    cfg: OrderConfig,
    /// Buys running on this order primary.
    in_flight: Mutex<BuysInFlight>,
    /// Buys the finisher is driving to completion right now.
    driving: Mutex<BTreeSet<RequestId>>,
    /// With several front ends: when this primary may answer (see
    /// `tenure.rs`). Taken after the replica when both are.
    tenure: Option<Mutex<Tenure>>,
    /// Shares RPCs among reservations bound for the catalog primary.
    reserves: Coalescer,
}

impl Default for OrderService {
    fn default() -> Self {
        OrderService {
            cfg: OrderConfig::default(),
            in_flight: Mutex::default(),
            driving: Mutex::default(),
            tenure: None,
            reserves: Coalescer::new(RESERVE_SLOTS, coalesce::MAX_BATCH),
        }
    }
}

/// Marks a request id as being bought here until dropped.
struct InFlight<'a> {
    service: &'a OrderService,
    request: RequestId,
}

impl<'a> InFlight<'a> {
    /// Enters `request` for `buy`; a different buy already running under
    /// the same id is a `Conflict` (the client may retry once it is done).
    fn enter(service: &'a OrderService, request: &str, buy: (ItemId, u64)) -> Result<Self> {
        let mut flights = service.in_flight.lock();
        match flights.get_mut(request) {
            Some((running, _)) if *running != buy => {
                return Err(Error::Conflict(
                    "a different buy with this Idempotency-Key is still in progress; \
                     nothing was bought for this one"
                        .into(),
                ))
            }
            Some((_, count)) => *count += 1,
            None => {
                flights.insert(request.to_string(), (buy, 1));
            }
        }
        Ok(InFlight {
            service,
            request: request.to_string(),
        })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut flights = self.service.in_flight.lock();
        if let Some((_, count)) = flights.get_mut(&self.request) {
            *count -= 1;
            if *count == 0 {
                flights.remove(&self.request);
            }
        }
    }
}

/// The status of a buy, from an applied outcome.
fn buy_status(outcome: Outcome) -> Result<BuyStatus> {
    match outcome {
        Outcome::Order(status) => Ok(status),
        other => Err(Error::Transport(format!("unexpected outcome {other:?}"))),
    }
}

impl OrderService {
    /// The service of an order replica with settings `cfg`; with `leases`
    /// (several front ends) it keeps a [`Tenure`] of the same periods, `hop`
    /// being the replica's `hop_timeout`.
    pub fn new(cfg: OrderConfig, leases: Option<LeaseConfig>, hop: Duration) -> Self {
        OrderService {
            // Deliberately broken: no tenure, as before it.
            tenure: leases
                .filter(|_| !cfg.unsafe_untenured_order_reads)
                .map(|l| Mutex::new(Tenure::new(l.lease, l.margin, hop))),
            cfg,
            ..OrderService::default()
        }
    }

    /// Marks, with a tenure, that this replica serves its epoch now (so a
    /// new primary's takeover starts as early as it is seen).
    fn mark_serving<T: Transport>(&self, r: &Replica<T>) {
        if let Some(tenure) = &self.tenure {
            let held = r.held();
            if held.serving() {
                tenure
                    .lock()
                    .serving(held.epoch(), tokio::time::Instant::now());
            }
        }
    }

    /// With a tenure: waits until a new primary's takeover is over, so
    /// that what it answers next may be shown (see `tenure.rs`). Fails if
    /// the replica stops serving meanwhile. Without: at once.
    async fn settled<T: Transport>(&self, r: &Replica<T>) -> Result<()> {
        let Some(tenure) = &self.tenure else {
            return Ok(());
        };
        let mut changes = r.subscribe();
        loop {
            changes.borrow_and_update();
            let next = {
                let held = r.held();
                if !held.serving() {
                    return Err(Error::Unavailable(
                        "the order primary lost its role before it could answer; retry".into(),
                    ));
                }
                let now = tokio::time::Instant::now();
                let mut t = tenure.lock();
                t.serving(held.epoch(), now);
                match t.settled(now) {
                    Ok(()) => return Ok(()),
                    Err(next) => next,
                }
            };
            tokio::select! {
                r = changes.changed() => r.map_err(|_| Error::Unavailable("shutting down".into()))?,
                _ = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// With a tenure: answers an order read (`read`, run once the takeover
    /// is over) only if, once it is computed, this replica is still the
    /// serving primary of the same epoch and every backup still follows
    /// (see `tenure.rs`); else declines, and the front end asks again.
    async fn tenured_read<T: Transport>(
        &self,
        r: &Replica<T>,
        read: impl std::future::Future<Output = Result<Response>>,
    ) -> Result<Response> {
        let Some(tenure) = &self.tenure else {
            return read.await;
        };
        let not_primary = || {
            Error::Unavailable(
                "with several front ends, the order primary answers order reads; ask it".into(),
            )
        };
        let epoch = {
            let held = r.held();
            if !held.serving() {
                return Err(not_primary());
            }
            held.epoch()
        };
        self.settled(r).await?;
        let answer = read.await?;
        let held = r.held();
        let now = tokio::time::Instant::now();
        let backups = held.view().map(|v| v.backups.as_slice()).unwrap_or(&[]);
        if !held.serving() || held.epoch() != epoch {
            return Err(not_primary());
        }
        if !tenure.lock().may_answer(epoch, backups, now) {
            return Err(Error::Unavailable(format!(
                "order primary of epoch {epoch}: a backup has not fetched within the lease \
                 period, so a newer view may exist; retry"
            )));
        }
        Ok(answer)
    }

    /// Serves `Buy` on the order primary.
    async fn buy<T: Transport>(
        &self,
        r: &Replica<T>,
        request: RequestId,
        item: ItemId,
        qty: u64,
    ) -> Result<Response> {
        let known = {
            let inner = r.held();
            if !inner.serving() {
                return Err(r.not_primary_error(&inner));
            }
            match inner.state() {
                State::Orders(ledger) => match ledger.status(&request) {
                    // A known request id must come with the same buy.
                    Some(_) if !same_buy(ledger.asked(&request), item, qty) => {
                        return Err(key_reused())
                    }
                    Some(done @ BuyStatus::Done(_)) => Some(Err(done)),
                    _ => Buy::pending(ledger, &request, inner.epoch()).map(Ok),
                },
                State::Catalog(_) => {
                    return Err(Error::InvalidInput("not an order replica".into()))
                }
            }
        };
        // Another buy under this id still running here: answer at once
        // rather than let two requests race for one id (the same buy again
        // goes on, and gets the same single outcome).
        let _flight = InFlight::enter(self, &request, (item, qty))?;
        let deadline = tokio::time::Instant::now() + self.cfg.buy_deadline;
        let (reserved, begun) = match known {
            Some(Err(status)) => {
                return Ok(Response::Buy {
                    status,
                    catalog_lsn: None,
                    lsn: r.held().commit(),
                })
            }
            // Pending: its Begin is committed; only the reservation is left.
            Some(Ok(buy)) => (self.reserve(r, buy, deadline).await, Ok(())),
            // New: reserve while the Begin commits.
            None => {
                let created = (r.clock())();
                let begin = OrderCommand::Begin {
                    request: request.clone(),
                    item,
                    qty,
                    created,
                };
                let (pos, committed) = r.append(Command::Order(begin))?;
                let buy = Buy {
                    request: request.clone(),
                    item,
                    qty,
                    begin: pos.lsn,
                    epoch: pos.epoch,
                };
                let (reserved, begun) =
                    tokio::join!(self.reserve(r, buy, deadline), committed.wait());
                (reserved, begun.map(|_| ()))
            }
        };
        // A reservation without its committed Begin is not an answer: the
        // buy may have been lost, and a new primary records it (module docs).
        begun?;
        let (outcome, lsn) = reserved?;
        // The first `Begin` under an id decides what the buy is, and the
        // catalog answers an id with its first reservation: if either was
        // another request's (one that came through an older primary, or
        // raced this one there), this request is not the one recorded.
        // Nothing was bought for it; the ledger records the other.
        let asked = {
            let inner = r.held();
            match inner.state() {
                State::Orders(ledger) => ledger.asked(&request),
                State::Catalog(_) => None,
            }
        };
        let reserved_for = match &outcome {
            Ok(r) => Some((r.item, Some(r.qty))),
            Err(Rejection::NotFound(i) | Rejection::OutOfStock(i)) => Some((*i, None)),
            Err(_) => None,
        };
        if !same_buy(asked, item, qty) || !same_buy(reserved_for, item, qty) {
            return Err(key_reused());
        }
        let (status, lsn) = self.record(r, request, outcome, lsn, Answer::Early).await?;
        // The buy's `Begin` is committed by now (`begun` above), so the
        // commit point covers it: an order read at or past it finds the order.
        Ok(Response::Buy {
            status,
            catalog_lsn: Some(lsn),
            lsn: r.held().commit(),
        })
    }

    /// Has the catalog reserve for `buy` (or give its first outcome back).
    /// Returns the outcome and the catalog's lsn.
    async fn reserve<T: Transport>(
        &self,
        r: &Replica<T>,
        buy: Buy,
        deadline: tokio::time::Instant,
    ) -> Result<(Result<Reservation, Rejection>, Lsn)> {
        let Buy {
            request,
            item,
            qty,
            begin,
            epoch,
        } = buy;
        let command = CatalogCommand::Reserve {
            request,
            item,
            qty,
            begin,
            epoch,
        };
        match self.catalog(r, command, deadline).await? {
            (CatalogOutcome::Reserved(outcome), lsn) => Ok((outcome, lsn)),
            (other, _) => Err(Error::Transport(format!(
                "unexpected answer to reserve: {other:?}"
            ))),
        }
    }

    /// Records the catalog's `outcome` of a pending buy (see [`Answer`]).
    async fn record<T: Transport>(
        &self,
        r: &Replica<T>,
        request: RequestId,
        outcome: Result<Reservation, Rejection>,
        lsn: Lsn,
        answer: Answer,
    ) -> Result<(BuyStatus, Lsn)> {
        let early = match answer {
            Answer::Early => {
                let inner = r.held();
                match inner.state() {
                    State::Orders(ledger) => ledger.outcome_of(&request, &outcome),
                    State::Catalog(_) => None,
                }
            }
            Answer::Recorded => None,
        };
        let finish = Command::Order(OrderCommand::Finish { request, outcome });
        if let (Some(status), Some(me)) = (early, r.arc()) {
            // The answer is decided and durable (see `Answer::Early`):
            // record it without making the client wait. If this Finish is
            // lost with the primary, the finisher redoes it.
            tokio::spawn(async move {
                if let Err(e) = me.submit(finish).await {
                    tracing::debug!(node = %me.config().me, error = %e, "finish left to the finisher");
                }
            });
            return Ok((status, lsn));
        }
        let (outcome, _) = r.submit(finish).await?;
        Ok((buy_status(outcome)?, lsn))
    }

    /// Reserves for a pending buy and records the outcome: the finisher's
    /// way to end a buy.
    async fn finish<T: Transport>(
        &self,
        r: &Replica<T>,
        buy: Buy,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let request = buy.request.clone();
        let (outcome, lsn) = self.reserve(r, buy, deadline).await?;
        self.record(r, request, outcome, lsn, Answer::Recorded)
            .await?;
        Ok(())
    }

    /// Has the catalog primary apply `command`, following `NotPrimary`
    /// hints and retrying until `deadline`. A `Stale` answer (see
    /// `CatalogCommand::Fence`) is a `StaleEpoch` error.
    async fn catalog<T: Transport>(
        &self,
        r: &Replica<T>,
        command: CatalogCommand,
        deadline: tokio::time::Instant,
    ) -> Result<(CatalogOutcome, Lsn)> {
        let mut hint: Option<NodeId> = None;
        let mut last = Error::Unavailable("catalog primary unknown".into());
        while tokio::time::Instant::now() < deadline {
            let target = hint.take().or_else(|| {
                let inner = r.held();
                inner.primary_of(Group::Catalog)
            });
            let Some(target) = target else {
                tokio::time::sleep(r.config().retry_delay).await;
                continue;
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let timeout = r.config().hop_timeout.min(left);
            let call = Request::Catalog(command.clone());
            // Reservations, many at once under load, share RPCs; the rare
            // fences and forgets go alone.
            let reply = match command {
                CatalogCommand::Reserve { .. } => {
                    self.reserves
                        .call(r.transport().as_ref(), &target, call, timeout)
                        .await
                }
                _ => r.transport().call(&target, call, timeout).await,
            };
            match reply {
                // A newer order primary has fenced the catalog: nothing
                // was applied, and this primary's epoch is over.
                Ok(Response::Catalog {
                    outcome: CatalogOutcome::Stale { fence },
                    ..
                }) => {
                    return Err(Error::StaleEpoch {
                        got: command.order_epoch().unwrap_or_default(),
                        current: fence,
                    })
                }
                Ok(Response::Catalog { outcome, lsn }) => return Ok((outcome, lsn)),
                Ok(other) => return Err(crate::transport::unexpected("catalog command", &other)),
                Err(Error::NotPrimary { hint: Some(h) }) if h != target => {
                    hint = Some(h);
                    last = Error::Unavailable(format!("{target} is not the catalog primary"));
                }
                Err(e) if e.is_retryable() => {
                    last = e;
                    tokio::time::sleep(r.config().retry_delay).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(match last {
            Error::Unavailable(m) => Error::Unavailable(m),
            other => Error::Unavailable(format!("catalog unreachable: {other}")),
        })
    }

    /// Order primary: finishes every pending buy, periodically, so a buy cut
    /// off by a crash (of a client, the front end, or the old primary) ends
    /// as an order or a refusal, never stays pending.
    ///
    /// It also tells the catalog which buys are settled (`Forget`), so the
    /// catalog drops their reservations: every buy whose `Begin` is below
    /// the lowest pending one is finished, and only a late duplicate could
    /// still ask for it, which the catalog then refuses. It does so only
    /// once it has fenced the catalog for its epoch and recorded the buys
    /// older epochs reserved for but lost (`reconcile`).
    async fn finisher<T: Transport>(self: Arc<Self>, r: Arc<Replica<T>>) {
        // The highest mark the catalog has acknowledged (from this process;
        // after a restart or a failover the next one is sent again, which
        // the catalog ignores if it is not higher).
        let mut forgotten: Lsn = 0;
        // The epoch whose predecessors' reservations are all recorded.
        let mut reconciled: Option<Epoch> = None;
        loop {
            tokio::time::sleep(self.cfg.finish_interval).await;
            let (pending, settled, epoch) = {
                let inner = r.held();
                if !inner.serving() {
                    continue;
                }
                let mut driving = self.driving.lock();
                let epoch = inner.epoch();
                let State::Orders(ledger) = inner.state() else {
                    return;
                };
                let settled = if self.cfg.unsafe_forget_pending {
                    inner.commit() + 1
                } else {
                    ledger.settled_below(inner.commit() + 1)
                };
                let todo: Vec<_> = ledger
                    .pending()
                    .into_iter()
                    .filter(|(request, ..)| !driving.contains(request))
                    .collect();
                for (request, ..) in &todo {
                    driving.insert(request.clone());
                }
                (todo, settled, epoch)
            };
            for (request, item, qty, begin) in pending {
                let (me, r) = (self.clone(), r.clone());
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + me.cfg.buy_deadline;
                    let buy = Buy {
                        request: request.clone(),
                        item,
                        qty,
                        begin,
                        epoch,
                    };
                    if let Err(e) = me.finish(&r, buy, deadline).await {
                        tracing::debug!(node = %r.config().me, %request, error = %e, "pending buy not finished yet");
                    }
                    me.driving.lock().remove(&request);
                });
            }
            if reconciled != Some(epoch) && !self.cfg.unsafe_skip_reconcile {
                match self.reconcile(&r, epoch).await {
                    Ok(()) => reconciled = Some(epoch),
                    Err(e) => {
                        tracing::debug!(node = %r.config().me, epoch, error = %e, "older epochs' reservations not recorded yet");
                        continue;
                    }
                }
            }
            if settled > forgotten {
                let deadline = tokio::time::Instant::now() + r.config().hop_timeout;
                let forget = CatalogCommand::Forget {
                    below: settled,
                    epoch,
                };
                match self.catalog(&r, forget, deadline).await {
                    Ok((CatalogOutcome::Forgot(_), _)) => forgotten = settled,
                    Ok((other, _)) => {
                        tracing::debug!(node = %r.config().me, answer = ?other, "unexpected answer to forget")
                    }
                    Err(e) => {
                        tracing::debug!(node = %r.config().me, error = %e, "catalog not told which buys are settled yet")
                    }
                }
            }
        }
    }

    /// Fences the catalog for `epoch` and finishes every buy older epochs
    /// reserved for, recording first those whose `Begin` was lost (see the
    /// module docs). Safe to repeat: the fence and every step are
    /// idempotent.
    async fn reconcile<T: Transport>(
        self: &Arc<Self>,
        r: &Arc<Replica<T>>,
        epoch: Epoch,
    ) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.cfg.buy_deadline;
        let inherited = match self
            .catalog(r, CatalogCommand::Fence { epoch }, deadline)
            .await?
        {
            (CatalogOutcome::Fenced(held), _) => held,
            (other, _) => {
                return Err(Error::Transport(format!(
                    "unexpected answer to fence: {other:?}"
                )))
            }
        };
        let mut finishing = tokio::task::JoinSet::new();
        for buy in inherited {
            let (me, r) = (self.clone(), r.clone());
            finishing.spawn(async move { me.adopt(&r, buy, epoch, deadline).await });
        }
        let mut result = Ok(());
        while let Some(done) = finishing.join_next().await {
            let done = done.map_err(|e| Error::Unavailable(format!("adopting a buy: {e}")));
            if let Err(e) = done.and_then(|r| r) {
                result = Err(e);
            }
        }
        result
    }

    /// Finishes a buy the catalog reserved for under an older epoch,
    /// recording its `Begin` first if the ledger does not know it.
    async fn adopt<T: Transport>(
        &self,
        r: &Replica<T>,
        inherited: Inherited,
        epoch: Epoch,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let Inherited { request, item, qty } = inherited;
        let known = match &r.held().state() {
            State::Orders(ledger) => ledger.status(&request).is_some(),
            State::Catalog(_) => return Err(Error::InvalidInput("not an order replica".into())),
        };
        if !known {
            let begin = OrderCommand::Begin {
                request: request.clone(),
                item,
                qty,
                created: (r.clock())(),
            };
            r.submit(Command::Order(begin)).await?;
        }
        let pending = match &r.held().state() {
            State::Orders(ledger) => Buy::pending(ledger, &request, epoch),
            State::Catalog(_) => None,
        };
        match pending {
            Some(buy) => self.finish(r, buy, deadline).await,
            // Finished, before or meanwhile (by the finisher's own drive).
            None => Ok(()),
        }
    }
}

impl OrderService {
    /// Reads an order. A buy is answered before its `Finish` commits (see
    /// the module docs), so its client may ask for the order while it is
    /// still pending here: the read waits for it (up to `buy_deadline`)
    /// rather than say "no such order" about an order already acknowledged.
    async fn read_order<T: Transport>(&self, r: &Replica<T>, id: OrderId) -> Result<Response> {
        let mut rx = r.subscribe();
        let deadline = tokio::time::Instant::now() + self.cfg.buy_deadline;
        loop {
            let pending = match r.held().state() {
                State::Orders(ledger) => ledger.is_pending_id(id),
                State::Catalog(_) => false,
            };
            if !pending {
                return r.read(Query::Order { id });
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(Error::Unavailable(format!(
                    "order {id} is still being recorded; retry"
                )));
            }
        }
    }
}

#[async_trait]
impl<T: Transport> Service<T> for OrderService {
    async fn handle(
        &self,
        r: &Replica<T>,
        request: Request,
    ) -> std::result::Result<Result<Response>, Request> {
        if self.tenure.is_some() {
            match &request {
                // A backup still in my epoch (see `tenure.rs`).
                Request::Fetch { epoch, from, .. } => {
                    let held = r.held();
                    if let Some(tenure) = &self.tenure {
                        let mut t = tenure.lock();
                        let now = tokio::time::Instant::now();
                        if held.serving() {
                            t.serving(held.epoch(), now);
                        }
                        if held.epoch() == *epoch {
                            t.heard(from, *epoch, now);
                        }
                    }
                    return Err(request);
                }
                Request::Heartbeat { .. } => {
                    self.mark_serving(r);
                    return Err(request);
                }
                _ => {}
            }
        }
        Ok(match request {
            Request::Buy { request, item, qty } => match self.buy(r, request, item, qty).await {
                // A new primary's takeover holds the answer (`tenure.rs`).
                Ok(answer) => self.settled(r).await.map(|()| answer),
                Err(e) => Err(e),
            },
            Request::Read(Query::Order { id }) => {
                self.tenured_read(r, self.read_order(r, id)).await
            }
            Request::ReadAt {
                query: Query::Order { id },
                min,
            } => {
                let read = async {
                    r.caught_up(min).await?;
                    self.read_order(r, id).await
                };
                self.tenured_read(r, read).await
            }
            // The other order queries, with several front ends: as order
            // reads (a backup's or a deposed primary's ledger may lack an
            // acknowledged order).
            Request::Read(query @ (Query::Orders | Query::BuyStatus { .. }))
                if self.tenure.is_some() =>
            {
                self.tenured_read(r, async { r.read(query) }).await
            }
            Request::ReadAt {
                query: query @ (Query::Orders | Query::BuyStatus { .. }),
                min,
            } if self.tenure.is_some() => {
                let read = async {
                    r.caught_up(min).await?;
                    r.read(query)
                };
                self.tenured_read(r, read).await
            }
            Request::Catalog(_) => Err(Error::InvalidInput(
                "catalog command sent to an order replica".into(),
            )),
            other => return Err(other),
        })
    }

    fn answer(&self, state: &State, query: Query) -> Result<QueryResult> {
        Ok(match (state, query) {
            (State::Orders(o), Query::Order { id }) => QueryResult::Order(o.order(id)),
            (State::Orders(o), Query::Orders) => QueryResult::Orders(o.orders()),
            (State::Orders(o), Query::BuyStatus { request }) => {
                QueryResult::BuyStatus(o.status(&request))
            }
            (_, q) => {
                return Err(Error::InvalidInput(format!(
                    "{q:?} is not served by the {} group",
                    Group::Order
                )))
            }
        })
    }

    fn stepped_down(&self) {
        if let Some(tenure) = &self.tenure {
            tenure.lock().stepped_down();
        }
    }

    fn spawn(self: Arc<Self>, replica: Arc<Replica<T>>) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(self.finisher(replica))]
    }
}
