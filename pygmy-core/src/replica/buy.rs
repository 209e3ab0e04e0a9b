//! Buying exactly once, across the two groups, and keeping the front end's
//! cache honest.
//!
//! The order primary commits `Begin(request)`, asks the catalog primary to
//! `Reserve(request)` (idempotent: a repeated request id gets the first
//! outcome), answers the client, and commits `Finish(request, outcome)`
//! (the answer is decided and durable once the reservation is; see
//! [`Answer::Early`]). Any step may be cut off
//! by a crash; because every step is idempotent, redoing the rest is always
//! safe, and the finisher redoes it for every buy left pending — including
//! those a new order primary inherits. A client retrying with the same
//! request id gets the same single order.
//!
//! Every `finish_interval` the order primary also sends the catalog
//! `Forget { below }`, the lowest order-log lsn of a buy still pending: the
//! catalog drops the reservations of the buys below it and refuses their
//! late duplicates, so its dedupe table holds only the buys in flight.
//!
//! The catalog primary pushes `(keys, lsn)` invalidations for every committed
//! change to the front end, in order, retrying until delivered.

use super::{buy_status, Replica};
use crate::command::{BuyStatus, CatalogCommand, CatalogOutcome, Command, OrderCommand};
use crate::error::{Error, Result};
use crate::message::{Request, Response};
use crate::state::State;
use crate::transport::Transport;
use crate::types::{Group, ItemId, Lsn, NodeId, RequestId};
use std::sync::Arc;

/// When [`Replica::drive`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// As soon as the catalog has answered the reservation. The buy's
    /// `Begin` (with its order id and timestamp) and the reservation are
    /// both committed then, and the catalog gives a repeated reservation
    /// the same answer while the buy is pending, so whoever records the
    /// `Finish` records the order this answer names: one commit fewer on
    /// the client's path. Reads of an order still being finished wait for
    /// it (`Replica::read_order`).
    Early,
    /// Once the `Finish` is committed (the finisher: nobody is waiting).
    Recorded,
}

impl<T: Transport> Replica<T> {
    /// Serves `Buy` on the order primary.
    pub(super) async fn buy(&self, request: RequestId, item: ItemId, qty: u64) -> Result<Response> {
        let known = {
            let inner = self.inner.lock();
            if !inner.serving {
                return Err(self.not_primary(&inner));
            }
            match &inner.state {
                State::Orders(ledger) => ledger.status(&request),
                State::Catalog(_) => None,
            }
        };
        if known.is_none() {
            let created = (self.clock)();
            let begin = OrderCommand::Begin {
                request: request.clone(),
                item,
                qty,
                created,
            };
            self.submit(Command::Order(begin)).await?;
        }
        // The buy as the ledger holds it: the first Begin's item, quantity
        // and lsn, or its final status.
        let pending = {
            let inner = self.inner.lock();
            match &inner.state {
                State::Orders(ledger) => match (ledger.status(&request), ledger.begun(&request)) {
                    (Some(BuyStatus::Pending { item, qty, .. }), Some(begin)) => {
                        Ok((item, qty, begin))
                    }
                    (Some(status), _) => Err(status),
                    (None, _) => {
                        return Err(Error::Unavailable(
                            "buy not recorded; retry with the same request id".into(),
                        ))
                    }
                },
                State::Catalog(_) => {
                    return Err(Error::InvalidInput("not an order replica".into()))
                }
            }
        };
        let (item, qty, begin) = match pending {
            Ok(pending) => pending,
            Err(status) => {
                return Ok(Response::Buy {
                    status,
                    catalog_lsn: None,
                })
            }
        };
        let deadline = tokio::time::Instant::now() + self.cfg.buy_deadline;
        let (status, lsn) = self
            .drive(request, item, qty, begin, deadline, Answer::Early)
            .await?;
        Ok(Response::Buy {
            status,
            catalog_lsn: Some(lsn),
        })
    }

    /// Reserves at the catalog and records the outcome (see [`Answer`]).
    async fn drive(
        &self,
        request: RequestId,
        item: ItemId,
        qty: u64,
        begin: Lsn,
        deadline: tokio::time::Instant,
        answer: Answer,
    ) -> Result<(BuyStatus, Lsn)> {
        let command = CatalogCommand::Reserve {
            request: request.clone(),
            item,
            qty,
            begin,
        };
        let (outcome, lsn) = match self.catalog(command, deadline).await? {
            (CatalogOutcome::Reserved(outcome), lsn) => (outcome, lsn),
            (other, _) => {
                return Err(Error::Transport(format!(
                    "unexpected answer to reserve: {other:?}"
                )))
            }
        };
        let early = match answer {
            Answer::Early => {
                let inner = self.inner.lock();
                match &inner.state {
                    State::Orders(ledger) => ledger.outcome_of(&request, &outcome),
                    State::Catalog(_) => None,
                }
            }
            Answer::Recorded => None,
        };
        let finish = Command::Order(OrderCommand::Finish { request, outcome });
        if let (Some(status), Some(me)) = (early, self.weak.upgrade()) {
            // The answer is decided and durable (see `Answer::Early`):
            // record it without making the client wait. If this Finish is
            // lost with the primary, the finisher redoes it.
            tokio::spawn(async move {
                if let Err(e) = me.submit(finish).await {
                    tracing::debug!(node = %me.cfg.me, error = %e, "finish left to the finisher");
                }
            });
            return Ok((status, lsn));
        }
        let (outcome, _) = self.submit(finish).await?;
        Ok((buy_status(outcome)?, lsn))
    }

    /// Has the catalog primary apply `command`, following `NotPrimary`
    /// hints and retrying until `deadline`.
    async fn catalog(
        &self,
        command: CatalogCommand,
        deadline: tokio::time::Instant,
    ) -> Result<(CatalogOutcome, Lsn)> {
        let mut hint: Option<NodeId> = None;
        let mut last = Error::Unavailable("catalog primary unknown".into());
        while tokio::time::Instant::now() < deadline {
            let target = hint.take().or_else(|| {
                let inner = self.inner.lock();
                inner.others.get(&Group::Catalog).map(|v| v.primary.clone())
            });
            let Some(target) = target else {
                tokio::time::sleep(self.cfg.retry_delay).await;
                continue;
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let timeout = self.cfg.hop_timeout.min(left);
            match self
                .transport
                .call(&target, Request::Catalog(command.clone()), timeout)
                .await
            {
                Ok(Response::Catalog { outcome, lsn }) => return Ok((outcome, lsn)),
                Ok(other) => return Err(crate::transport::unexpected("catalog command", &other)),
                Err(Error::NotPrimary { hint: Some(h) }) if h != target => {
                    hint = Some(h);
                    last = Error::Unavailable(format!("{target} is not the catalog primary"));
                }
                Err(e) if e.is_retryable() => {
                    last = e;
                    tokio::time::sleep(self.cfg.retry_delay).await;
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
    /// still ask for it, which the catalog then refuses.
    pub(super) async fn finisher(self: Arc<Self>) {
        // The highest mark the catalog has acknowledged (from this process;
        // after a restart or a failover the next one is sent again, which
        // the catalog ignores if it is not higher).
        let mut forgotten: Lsn = 0;
        loop {
            tokio::time::sleep(self.cfg.finish_interval).await;
            let (pending, settled) = {
                let mut inner = self.inner.lock();
                if !inner.serving {
                    continue;
                }
                let State::Orders(ledger) = &inner.state else {
                    return;
                };
                let settled = if self.cfg.unsafe_forget_pending {
                    inner.commit + 1
                } else {
                    ledger.settled_below(inner.commit + 1)
                };
                let todo: Vec<_> = ledger
                    .pending()
                    .into_iter()
                    .filter(|(r, ..)| !inner.driving.contains(r))
                    .collect();
                for (r, ..) in &todo {
                    inner.driving.insert(r.clone());
                }
                (todo, settled)
            };
            for (request, item, qty, begin) in pending {
                let me = self.clone();
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + me.cfg.buy_deadline;
                    let result = me
                        .drive(
                            request.clone(),
                            item,
                            qty,
                            begin,
                            deadline,
                            Answer::Recorded,
                        )
                        .await;
                    if let Err(e) = result {
                        tracing::debug!(node = %me.cfg.me, %request, error = %e, "pending buy not finished yet");
                    }
                    me.inner.lock().driving.remove(&request);
                });
            }
            if settled > forgotten {
                let deadline = tokio::time::Instant::now() + self.cfg.hop_timeout;
                let forget = CatalogCommand::Forget { below: settled };
                match self.catalog(forget, deadline).await {
                    Ok(_) => forgotten = settled,
                    Err(e) => {
                        tracing::debug!(node = %self.cfg.me, error = %e, "catalog not told which buys are settled yet")
                    }
                }
            }
        }
    }

    /// Catalog primary: delivers invalidations to the front end, in order.
    pub(super) async fn pusher(self: Arc<Self>) {
        let mut rx = self.changed.subscribe();
        loop {
            let batch = {
                let mut inner = self.inner.lock();
                if inner.serving {
                    std::mem::take(&mut inner.outbox)
                } else {
                    inner.outbox.clear();
                    Vec::new()
                }
            };
            if batch.is_empty() {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let lsn = batch.iter().map(|(_, l)| *l).max().unwrap_or(0);
            let mut keys: Vec<_> = batch.iter().flat_map(|(k, _)| k.iter().cloned()).collect();
            keys.sort();
            keys.dedup();
            let request = Request::Invalidate { keys, lsn };
            let delivered = self
                .transport
                .call(&self.cfg.frontend, request, self.cfg.hop_timeout)
                .await;
            if delivered.is_err() {
                // Put them back in front, to be merged with newer ones.
                {
                    let mut inner = self.inner.lock();
                    if inner.serving {
                        let newer = std::mem::replace(&mut inner.outbox, batch);
                        inner.outbox.extend(newer);
                    }
                }
                tokio::time::sleep(self.cfg.retry_delay).await;
            }
        }
    }
}
