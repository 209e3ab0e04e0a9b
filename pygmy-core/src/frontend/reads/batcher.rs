//! Read batching: under load, the front end's cache misses bound for the
//! same replica share one RPC.
//!
//! Each replica has a lane with at most `slots` RPCs in flight. A
//! read that finds a free slot takes it and goes at once, so an unloaded
//! front end adds no wait. A read that finds the lane full queues. When an
//! RPC's answers are back, its slot is handed to the oldest queued read,
//! which leads the next RPC: itself and up to `max_batch - 1` more queued
//! reads, in one `ReadBatch`. The replica answers them all under one lock
//! at one commit lsn. This is the read side's group commit: one HTTP
//! exchange, one wake-up of the replica and one of the front end's pooled
//! connection now carry a batch instead of one read, which on a small
//! machine is most of what an uncached read costs.
//!
//! # Guarantees
//!
//! - **Same answers.** Every read in a batch was issued before the batch
//!   was sent and is answered from one committed state of the replica, read
//!   after it arrived: the answer any read sent alone at that moment would
//!   get. Each answer carries the batch's commit lsn, which the cache's
//!   fill check uses as before.
//! - **Each read gets its own answer**, in the order the queries were
//!   sent; a reply of the wrong length is a transport error, not a
//!   misattributed book.
//! - **Failures stay per read.** A failed RPC (lost, timed out, refused)
//!   fails every read in it with the same retryable transport error, and
//!   each read's caller retries on another member, as a single read would.
//!   The reads queued behind it for the same replica fail with it: they
//!   would go next to a replica that just failed, and a hung replica would
//!   otherwise hold each 64 of them for a timeout in turn. A lead that is
//!   dropped mid-call (its client went away) fails its batch's reads the
//!   same way.
//! - **No lost slot.** A slot is released on drop, whoever holds it: the
//!   leader, or a queued read handed the lead that goes away before using
//!   it. So a lane never stays full with nothing in flight.
//!
//! # Caveats
//!
//! - A queued read waits for an RPC in flight to come back before its own
//!   is sent: at most one hop more than alone, and only when the lane is
//!   full, which is exactly when batching pays.
//! - Only reads answered at once (lookups and searches) are batched; a
//!   read that may wait at the replica (an order still being recorded) or
//!   is large (a dump) goes alone.

use crate::error::{Error, Result};
use crate::transport::message::{Query, QueryResult, Request, Response};
use crate::transport::{unexpected, Transport};
use crate::types::{Lsn, NodeId};
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// A read's answer: the result and the commit lsn it was read at.
pub type Answer = Result<(QueryResult, Lsn)>;

/// RPCs in flight per replica by default. One: the reads that arrive while
/// it travels all ride the next, so a batch grows with the load. Measured
/// on two shared cores with 64 clients (`benches/ab.py --uncached`): 1.46
/// to 1.59 times the one-hop baseline with one slot, 1.32 to 1.49 with
/// two, 1.24 to 1.36 with four.
pub const READ_SLOTS: usize = 1;
/// Reads per RPC at most by default (bounds a batch's reply size).
pub const MAX_BATCH: usize = 64;

/// Batches reads per replica (see the module docs).
pub struct Batcher {
    lanes: Lanes,
    slots: usize,
    max_batch: usize,
    /// Deliberately broken (tests only): answers shifted by one.
    misroute: bool,
}

/// Every replica's lane, shared with the slots taken from them.
type Lanes = Arc<Mutex<BTreeMap<NodeId, Lane>>>;

/// One replica's lane.
#[derive(Default)]
struct Lane {
    /// Slots taken: RPCs in flight or about to be sent.
    in_flight: usize,
    /// Reads waiting for a slot, oldest first.
    queue: VecDeque<Waiter>,
}

struct Waiter {
    query: Query,
    /// The lowest commit point its answer may come from.
    min: Lsn,
    turn: oneshot::Sender<Turn>,
}

/// What a queued read is woken with.
enum Turn {
    /// Its answer, from a batch someone else led.
    Done(Answer),
    /// A slot, handed over: lead the next batch, starting with this query
    /// (and its minimum commit point).
    Lead(Query, Lsn, Slot),
}

/// A taken slot of a lane; dropping it hands the slot to the oldest queued
/// read or frees it.
struct Slot {
    lanes: Lanes,
    node: NodeId,
    /// False once the slot has been accounted for elsewhere.
    armed: bool,
}

impl Slot {
    fn new(lanes: &Lanes, node: &NodeId) -> Self {
        Slot {
            lanes: lanes.clone(),
            node: node.clone(),
            armed: true,
        }
    }

    /// Runs `f` on this slot's lane, under the lanes' lock.
    fn with_lane<R>(&self, f: impl FnOnce(&mut Lane) -> R) -> Option<R> {
        self.lanes.lock().get_mut(&self.node).map(f)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut lanes = self.lanes.lock();
        let Some(lane) = lanes.get_mut(&self.node) else {
            return;
        };
        while let Some(next) = lane.queue.pop_front() {
            let slot = Slot::new(&self.lanes, &self.node);
            match next.turn.send(Turn::Lead(next.query, next.min, slot)) {
                Ok(()) => return,
                // That read went away: the slot comes back with its `Turn`
                // and stays with this one (dropping it armed would re-lock
                // the lanes); try the next.
                Err(Turn::Lead(_, _, mut slot)) => slot.armed = false,
                Err(Turn::Done(_)) => unreachable!("a lead was sent"),
            }
        }
        lane.in_flight -= 1;
    }
}

impl Batcher {
    /// At most `slots` RPCs in flight per replica, `max_batch` reads each
    /// (both at least 1).
    pub fn new(slots: usize, max_batch: usize) -> Self {
        Batcher {
            lanes: Arc::new(Mutex::new(BTreeMap::new())),
            slots: slots.max(1),
            max_batch: max_batch.max(1),
            misroute: false,
        }
    }

    /// Deliberately broken, for tests only: each read of a batch gets the
    /// next one's answer (the last gets the first's).
    pub fn misrouting(mut self, misroute: bool) -> Self {
        self.misroute = misroute;
        self
    }

    /// Whether `query` may share an RPC (see [`Query::batchable`]).
    pub fn batchable(query: &Query) -> bool {
        query.batchable()
    }

    /// Reads `query` from `node`, alone or in a batch, at a commit point
    /// of at least `min`; each RPC gets `timeout`.
    pub async fn read<T: Transport + ?Sized>(
        &self,
        transport: &T,
        node: &NodeId,
        query: Query,
        min: Lsn,
        timeout: Duration,
    ) -> Answer {
        // A free slot is taken at once; otherwise the read waits for its
        // turn, which is its answer or a slot handed over.
        let now_or_later = {
            let mut lanes = self.lanes.lock();
            let lane = match lanes.get_mut(node) {
                Some(lane) => lane,
                None => lanes.entry(node.clone()).or_default(),
            };
            if lane.in_flight < self.slots {
                lane.in_flight += 1;
                Ok(Turn::Lead(query, min, Slot::new(&self.lanes, node)))
            } else {
                let (turn, rx) = oneshot::channel();
                lane.queue.push_back(Waiter { query, min, turn });
                Err(rx)
            }
        };
        let turn = match now_or_later {
            Ok(turn) => turn,
            Err(rx) => rx.await.map_err(|_| {
                Error::Transport(format!(
                    "{node}: the read batch carrying this read was abandoned"
                ))
            })?,
        };
        match turn {
            Turn::Done(answer) => answer,
            Turn::Lead(query, min, slot) => self.lead(transport, slot, query, min, timeout).await,
        }
    }

    /// Sends `own` and the oldest queued reads as one RPC on `slot`, hands
    /// the others their answers and returns `own`'s. The batch asks for the
    /// highest of its reads' minimum commit points, which satisfies each.
    /// The slot is released when this returns or is dropped.
    async fn lead<T: Transport + ?Sized>(
        &self,
        transport: &T,
        slot: Slot,
        own: Query,
        min: Lsn,
        timeout: Duration,
    ) -> Answer {
        let mut queries = vec![own];
        let mut min = min;
        let mut others = Vec::new();
        slot.with_lane(|lane| {
            let take = lane.queue.len().min(self.max_batch - 1);
            for waiter in lane.queue.drain(..take) {
                queries.push(waiter.query);
                min = min.max(waiter.min);
                others.push(waiter.turn);
            }
        });
        let sent = queries.len();
        let reply = transport
            .call(&slot.node, Request::ReadBatch { queries, min }, timeout)
            .await;
        let answers = match reply {
            Ok(Response::ReadBatch { results, lsn }) if results.len() == sent => Ok((results, lsn)),
            Ok(Response::ReadBatch { results, .. }) => Err(Error::Transport(format!(
                "{}: {} answers to a batch of {sent} reads",
                slot.node,
                results.len()
            ))),
            Ok(other) => Err(unexpected("read batch", &other)),
            Err(e) => Err(e),
        };
        // On a failure, the reads queued behind this one fail with it (see
        // the module docs); taken before the slot is freed, so it is not
        // handed to one of them.
        let behind: Vec<oneshot::Sender<Turn>> = match &answers {
            Ok(_) => Vec::new(),
            Err(_) => slot
                .with_lane(|lane| lane.queue.drain(..).map(|w| w.turn).collect())
                .unwrap_or_default(),
        };
        // Free the slot (or hand it on) before waking anyone, so the next
        // batch is on its way while these answers are delivered.
        drop(slot);
        match answers {
            Ok((mut results, lsn)) => {
                if self.misroute {
                    results.rotate_left(1);
                }
                let mut results = results.into_iter();
                let own = results.next().map(|r| (r, lsn));
                for (turn, result) in others.into_iter().zip(results) {
                    // A read that went away no longer wants its answer.
                    let _ = turn.send(Turn::Done(Ok((result, lsn))));
                }
                own.ok_or_else(|| Error::Transport("an empty read batch".into()))
            }
            Err(e) => {
                for turn in others.into_iter().chain(behind) {
                    let _ = turn.send(Turn::Done(Err(e.clone())));
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Book, ItemId};
    use async_trait::async_trait;
    use tokio::sync::Semaphore;

    /// Records every batch; answers each once `gate` gives it a permit.
    struct Gated {
        batches: Mutex<Vec<Vec<Query>>>,
        /// The minimum commit point each batch asked for.
        mins: Mutex<Vec<Lsn>>,
        gate: Semaphore,
        reply: Reply,
    }

    #[derive(Clone, Copy)]
    enum Reply {
        Books,
        Lost,
        /// The first RPC is answered, every later one lost.
        LostAfterFirst,
        OneShort,
    }

    fn book(id: ItemId) -> Book {
        Book {
            id,
            title: format!("book {id}"),
            cost: 10,
            count: 3,
            topic: "t".into(),
        }
    }

    #[async_trait]
    impl Transport for Gated {
        async fn call(&self, _: &NodeId, request: Request, _: Duration) -> Result<Response> {
            let Request::ReadBatch { queries, min } = request else {
                panic!("not a batch: {request:?}");
            };
            self.mins.lock().push(min);
            let call = {
                let mut batches = self.batches.lock();
                batches.push(queries.clone());
                batches.len()
            };
            self.gate.acquire().await.expect("open").forget();
            let mut results: Vec<QueryResult> = queries
                .iter()
                .map(|q| match q {
                    Query::Lookup { id } => QueryResult::Book(Some(book(*id))),
                    _ => QueryResult::Books(vec![]),
                })
                .collect();
            match self.reply {
                Reply::Books => {}
                Reply::Lost => return Err(Error::Transport("lost".into())),
                Reply::LostAfterFirst if call > 1 => return Err(Error::Transport("lost".into())),
                Reply::LostAfterFirst => {}
                Reply::OneShort => {
                    results.pop();
                }
            }
            Ok(Response::ReadBatch { results, lsn: 7 })
        }
    }

    struct Setup {
        batcher: Arc<Batcher>,
        transport: Arc<Gated>,
    }

    fn setup(slots: usize, max_batch: usize, reply: Reply) -> Setup {
        Setup {
            batcher: Arc::new(Batcher::new(slots, max_batch)),
            transport: Arc::new(Gated {
                batches: Mutex::new(Vec::new()),
                mins: Mutex::new(Vec::new()),
                gate: Semaphore::new(0),
                reply,
            }),
        }
    }

    impl Setup {
        /// Starts a lookup of `id` on replica "r", asking for commit point
        /// `id` at least, and lets it run as far as it can.
        async fn lookup(&self, id: ItemId) -> tokio::task::JoinHandle<Answer> {
            let (batcher, transport) = (self.batcher.clone(), self.transport.clone());
            let task = tokio::spawn(async move {
                let node = NodeId::new("r");
                let query = Query::Lookup { id };
                let timeout = Duration::from_secs(1);
                batcher
                    .read(transport.as_ref(), &node, query, id, timeout)
                    .await
            });
            settle().await;
            task
        }

        fn batches(&self) -> Vec<Vec<ItemId>> {
            let ids = |q: &Query| match q {
                Query::Lookup { id } => *id,
                other => panic!("{other:?}"),
            };
            let batches = self.transport.batches.lock();
            batches
                .iter()
                .map(|b| b.iter().map(ids).collect())
                .collect()
        }

        async fn release(&self, rpcs: usize) {
            self.transport.gate.add_permits(rpcs);
            settle().await;
        }
    }

    /// Lets every spawned task run until it waits (current-thread runtime).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn id_of(answer: Answer) -> ItemId {
        match answer.expect("answered") {
            (QueryResult::Book(Some(book)), 7) => book.id,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_read_with_a_free_slot_goes_at_once_and_alone() {
        let s = setup(2, 64, Reply::Books);
        let a = s.lookup(1).await;
        assert_eq!(s.batches(), [vec![1]]);
        s.release(1).await;
        assert_eq!(id_of(a.await.unwrap()), 1);
    }

    #[tokio::test]
    async fn reads_beyond_the_slots_share_the_next_rpc_and_each_gets_its_own_answer() {
        let s = setup(1, 64, Reply::Books);
        let first = s.lookup(1).await;
        let mut queued = Vec::new();
        for id in 2..=5 {
            queued.push(s.lookup(id).await);
        }
        assert_eq!(s.batches(), [vec![1]], "the others wait for the slot");
        s.release(2).await;
        assert_eq!(s.batches(), [vec![1], vec![2, 3, 4, 5]]);
        assert_eq!(
            *s.transport.mins.lock(),
            [1, 5],
            "a batch asks for the highest minimum commit point of its reads"
        );
        assert_eq!(id_of(first.await.unwrap()), 1);
        for (task, id) in queued.into_iter().zip(2..) {
            assert_eq!(id_of(task.await.unwrap()), id);
        }
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_batch_reads() {
        let s = setup(1, 2, Reply::Books);
        let mut tasks = vec![s.lookup(1).await];
        for id in 2..=6 {
            tasks.push(s.lookup(id).await);
        }
        s.release(4).await;
        assert_eq!(s.batches(), [vec![1], vec![2, 3], vec![4, 5], vec![6]]);
        for (task, id) in tasks.into_iter().zip(1..) {
            assert_eq!(id_of(task.await.unwrap()), id);
        }
    }

    #[tokio::test]
    async fn a_lost_batch_fails_each_of_its_reads_retryably_and_frees_its_slot() {
        let s = setup(1, 64, Reply::LostAfterFirst);
        let first = s.lookup(1).await;
        let tasks = vec![s.lookup(2).await, s.lookup(3).await];
        s.release(2).await;
        assert_eq!(id_of(first.await.unwrap()), 1);
        assert_eq!(s.batches(), [vec![1], vec![2, 3]]);
        for task in tasks {
            let e = task.await.unwrap().expect_err("lost");
            assert!(e.is_retryable(), "{e:?}");
        }
        let after = s.lookup(4).await;
        assert_eq!(s.batches().last(), Some(&vec![4]), "the slot is free");
        s.release(1).await;
        assert!(after.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn reads_queued_behind_a_failed_rpc_fail_with_it_without_an_rpc_of_their_own() {
        let s = setup(1, 2, Reply::Lost);
        let first = s.lookup(1).await;
        let mut queued = Vec::new();
        for id in 2..=6 {
            queued.push(s.lookup(id).await);
        }
        s.release(1).await;
        assert_eq!(
            s.batches(),
            [vec![1]],
            "no RPC to the failed replica for them"
        );
        assert!(first.await.unwrap().is_err());
        for task in queued {
            let answer = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("failed at once, not left waiting");
            let e = answer.unwrap().expect_err("failed with the RPC ahead");
            assert!(e.is_retryable(), "{e:?}");
        }
        let after = s.lookup(7).await;
        assert_eq!(s.batches().last(), Some(&vec![7]), "the slot is free");
        s.release(1).await;
        assert!(after.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_reply_of_the_wrong_length_is_a_transport_error_for_every_read() {
        let s = setup(1, 64, Reply::OneShort);
        let first = s.lookup(1).await;
        let (a, b) = (s.lookup(2).await, s.lookup(3).await);
        s.release(2).await;
        assert!(
            first.await.unwrap().is_err(),
            "a batch of one, answered with none"
        );
        for task in [a, b] {
            assert!(matches!(task.await.unwrap(), Err(Error::Transport(_))));
        }
    }

    #[tokio::test]
    async fn a_cancelled_lead_hands_its_slot_on_and_fails_only_its_own_batch() {
        let s = setup(1, 64, Reply::Books);
        let lead = s.lookup(1).await;
        let (b, c) = (s.lookup(2).await, s.lookup(3).await);
        lead.abort();
        settle().await;
        assert_eq!(
            s.batches(),
            [vec![1], vec![2, 3]],
            "the oldest waiter leads"
        );
        s.release(2).await;
        assert_eq!(id_of(b.await.unwrap()), 2);
        assert_eq!(id_of(c.await.unwrap()), 3);
    }

    #[tokio::test]
    async fn reads_that_share_a_cancelled_lead_are_failed_retryably() {
        let s = setup(1, 64, Reply::Books);
        let first = s.lookup(1).await;
        let (b, c) = (s.lookup(2).await, s.lookup(3).await);
        s.release(1).await; // 1 answered; 2 leads [2, 3], stuck in the call
        assert_eq!(id_of(first.await.unwrap()), 1);
        assert_eq!(s.batches(), [vec![1], vec![2, 3]]);
        b.abort();
        let e = c.await.unwrap().expect_err("its batch went away");
        assert!(e.is_retryable(), "{e:?}");
        let after = s.lookup(4).await;
        assert_eq!(s.batches().last(), Some(&vec![4]), "the slot is free");
        s.release(2).await;
        assert_eq!(id_of(after.await.unwrap()), 4);
    }

    #[tokio::test]
    async fn a_waiter_gone_before_its_turn_is_skipped_and_the_slot_not_lost() {
        let s = setup(1, 1, Reply::Books);
        let first = s.lookup(1).await;
        let (gone, next) = (s.lookup(2).await, s.lookup(3).await);
        gone.abort();
        settle().await;
        s.release(1).await;
        assert_eq!(id_of(first.await.unwrap()), 1);
        assert_eq!(s.batches(), [vec![1], vec![3]], "2 went away, 3 leads");
        s.release(1).await;
        assert_eq!(id_of(next.await.unwrap()), 3);
        let after = s.lookup(4).await;
        assert_eq!(s.batches().last(), Some(&vec![4]), "the slot is free");
        s.release(1).await;
        assert_eq!(id_of(after.await.unwrap()), 4);
    }

    #[tokio::test]
    async fn misrouting_hands_out_the_next_reads_answer() {
        let mut s = setup(1, 64, Reply::Books);
        s.batcher = Arc::new(Batcher::new(1, 64).misrouting(true));
        let first = s.lookup(1).await;
        let (a, b) = (s.lookup(2).await, s.lookup(3).await);
        s.release(2).await;
        assert_eq!(id_of(first.await.unwrap()), 1, "alone, nothing to swap");
        assert_eq!(id_of(a.await.unwrap()), 3);
        assert_eq!(id_of(b.await.unwrap()), 2);
    }
}
