//! Coalescing: under load, calls bound for the same node share one RPC, a
//! [`Request::Batch`]. This is the write side's counterpart of the front
//! end's read batcher (`frontend/reads/batcher.rs`), and works the same
//! way: each node has a lane with at most `slots` RPCs in flight; a call
//! that finds a free slot takes it and goes at once, alone and unwrapped,
//! so an unloaded caller adds no wait and no envelope. A call that finds
//! the lane full queues. When an RPC is back, its slot is handed to the
//! oldest queued call, which leads the next RPC: itself and up to
//! `max_batch - 1` more queued calls, in one `Batch`. The node answers
//! each request of the batch as if it had come alone, all of them side by
//! side ([`answer`]), and sends the answers back in one reply. One HTTP
//! exchange, one wake-up of each side and one commit of the node's log now
//! carry many buys (front end → order primary) or many reservations
//! (order primary → catalog primary).
//!
//! # Guarantees
//!
//! - **Same handling.** A request in a batch is handed to the node's
//!   handler exactly as it would be alone; nothing about its effect
//!   depends on its neighbours. Every request that may be coalesced is
//!   idempotent under its own id (buys and reservations are), as the
//!   [`Transport`] contract already requires of anything retried.
//! - **Each call gets its own answer**, in the order the requests were
//!   sent; a reply of the wrong length is a transport error (outcome
//!   unknown, retry), never an answer given to the wrong call.
//! - **Failures stay per call.** A node's error for one request
//!   (`Response::Error`) is that call's error only. A failed RPC (lost,
//!   timed out, refused: `Error::Transport`) fails every call in it with the same retryable
//!   transport error, and the calls queued behind it for the same node
//!   too (they would go next to a node that just failed; a hung node would
//!   otherwise hold each of them for a timeout in turn). Each caller then
//!   retries as it would after a lone call's failure.
//! - **Deadlines hold.** A call waits at most its own `timeout` in all,
//!   queued or in flight; the batch's RPC gets its leader's remaining time.
//! - **No lost slot.** A slot is released on drop, whoever holds it, so a
//!   lane never stays full with nothing in flight.
//! - **Bounded.** A batch holds at most `max_batch` requests; a node
//!   refuses a larger one, and a batch inside a batch ([`answer`]).
//!
//! # Caveats
//!
//! - A queued call waits for an RPC in flight to come back before its own
//!   is sent: at most one round trip more than alone, and only when the
//!   lane is full.
//! - A batch is answered when its slowest request is: a buy that waits
//!   (say, for a catalog primary that is away) holds the answers of the
//!   buys beside it. Buys and reservations to one node share their fate
//!   anyway (one log, one catalog primary), so this costs little.

use crate::error::{Error, Result};
use crate::transport::message::{Request, Response};
use crate::transport::{into_result, unexpected, Handler, Transport};
use crate::types::NodeId;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Requests per batch at most (bounds a batch's size and the work one
/// RPC asks of a node).
pub const MAX_BATCH: usize = 64;

/// Coalesces calls per node (see the module docs).
pub struct Coalescer {
    lanes: Lanes,
    slots: usize,
    max_batch: usize,
}

/// Every node's lane, shared with the slots taken from them.
type Lanes = Arc<Mutex<BTreeMap<NodeId, Lane>>>;

/// One node's lane.
#[derive(Default)]
struct Lane {
    /// Slots taken: RPCs in flight or about to be sent.
    in_flight: usize,
    /// Calls waiting for a slot, oldest first.
    queue: VecDeque<Waiter>,
}

struct Waiter {
    request: Request,
    turn: oneshot::Sender<Turn>,
}

/// What a queued call is woken with.
enum Turn {
    /// Its answer, from a batch someone else led.
    Done(Result<Response>),
    /// A slot, handed over: lead the next batch, starting with this request.
    Lead(Request, Slot),
}

/// A taken slot of a lane; dropping it hands the slot to the oldest queued
/// call or frees it.
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
            match next.turn.send(Turn::Lead(next.request, slot)) {
                Ok(()) => return,
                // That call went away: the slot comes back with its `Turn`
                // and stays with this one (dropping it armed would re-lock
                // the lanes); try the next.
                Err(Turn::Lead(_, mut slot)) => slot.armed = false,
                Err(Turn::Done(_)) => unreachable!("a lead was sent"),
            }
        }
        lane.in_flight -= 1;
    }
}

impl Coalescer {
    /// At most `slots` RPCs in flight per node, `max_batch` requests each
    /// (both at least 1, `max_batch` at most [`MAX_BATCH`]).
    pub fn new(slots: usize, max_batch: usize) -> Self {
        Coalescer {
            lanes: Arc::new(Mutex::new(BTreeMap::new())),
            slots: slots.max(1),
            max_batch: max_batch.clamp(1, MAX_BATCH),
        }
    }

    /// Sends `request` to `to` through `transport`, alone or in a batch,
    /// within `timeout`; the answer is what a lone `transport.call` would
    /// give.
    pub async fn call<T: Transport + ?Sized>(
        &self,
        transport: &T,
        to: &NodeId,
        request: Request,
        timeout: Duration,
    ) -> Result<Response> {
        let deadline = tokio::time::Instant::now() + timeout;
        // A free slot is taken at once; otherwise the call waits for its
        // turn, which is its answer or a slot handed over.
        let now_or_later = {
            let mut lanes = self.lanes.lock();
            let lane = match lanes.get_mut(to) {
                Some(lane) => lane,
                None => lanes.entry(to.clone()).or_default(),
            };
            if lane.in_flight < self.slots {
                lane.in_flight += 1;
                Ok(Turn::Lead(request, Slot::new(&self.lanes, to)))
            } else {
                let (turn, rx) = oneshot::channel();
                lane.queue.push_back(Waiter { request, turn });
                Err(rx)
            }
        };
        let turn = match now_or_later {
            Ok(turn) => turn,
            Err(rx) => match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(turn)) => turn,
                Ok(Err(_)) => {
                    return Err(Error::Transport(format!(
                        "{to}: the batch carrying this call was abandoned"
                    )))
                }
                Err(_) => {
                    return Err(Error::Transport(format!(
                        "{to}: no reply within {timeout:?}"
                    )))
                }
            },
        };
        match turn {
            Turn::Done(answer) => answer,
            Turn::Lead(request, slot) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.lead(transport, slot, request, left).await
            }
        }
    }

    /// Sends `own` and the oldest queued calls as one RPC on `slot` (`own`
    /// alone, unwrapped, if nobody is queued), hands the others their
    /// answers and returns `own`'s. The slot is released when this returns
    /// or is dropped.
    async fn lead<T: Transport + ?Sized>(
        &self,
        transport: &T,
        slot: Slot,
        own: Request,
        timeout: Duration,
    ) -> Result<Response> {
        let mut requests = vec![own];
        let mut others = Vec::new();
        slot.with_lane(|lane| {
            while requests.len() < self.max_batch {
                let Some(waiter) = lane.queue.pop_front() else {
                    break;
                };
                // A call that went away (its deadline passed) is not sent.
                if waiter.turn.is_closed() {
                    continue;
                }
                requests.push(waiter.request);
                others.push(waiter.turn);
            }
        });
        // A lone request goes unwrapped; its answer stands for a batch of one.
        let answers = if others.is_empty() {
            let own = requests.pop().expect("the leader's own request");
            transport
                .call(&slot.node, own, timeout)
                .await
                .map(|reply| vec![reply])
        } else {
            let sent = requests.len();
            match transport
                .call(&slot.node, Request::Batch { requests }, timeout)
                .await
            {
                Ok(Response::Batch { responses }) if responses.len() == sent => Ok(responses),
                Ok(Response::Batch { responses }) => Err(Error::Transport(format!(
                    "{}: {} answers to a batch of {sent} requests",
                    slot.node,
                    responses.len()
                ))),
                Ok(other) => Err(unexpected("batch", &other)),
                Err(e) => Err(e),
            }
        };
        // On a failure, the calls queued behind this batch fail with it
        // (see the module docs); taken before the slot is freed, so it is
        // not handed to one of them.
        // A node's own refusal of a lone request is that request's answer
        // only: the node is there.
        let behind: Vec<oneshot::Sender<Turn>> = match &answers {
            Err(Error::Transport(_)) => slot
                .with_lane(|lane| lane.queue.drain(..).map(|w| w.turn).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        // Free the slot (or hand it on) before waking anyone, so the next
        // batch is on its way while these answers are delivered.
        drop(slot);
        match answers {
            Ok(responses) => {
                let mut responses = responses.into_iter().map(into_result);
                let own = responses
                    .next()
                    .expect("one answer per request, at least one");
                for (turn, answer) in others.into_iter().zip(responses) {
                    // A call that went away no longer wants its answer.
                    let _ = turn.send(Turn::Done(answer));
                }
                own
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

/// A node's answer to `Request::Batch`: each request handed to `handler`
/// as if it had come alone, all of them side by side (so they share the
/// node's next log commit), the answers in the requests' order. A batch
/// larger than [`MAX_BATCH`] or holding a batch is refused whole (nothing
/// in it is handled).
pub async fn answer<H: Handler + ?Sized>(handler: &H, requests: Vec<Request>) -> Response {
    if requests.len() > MAX_BATCH {
        return Response::Error(Error::InvalidInput(format!(
            "a batch holds at most {MAX_BATCH} requests, not {}",
            requests.len()
        )));
    }
    if requests.iter().any(|r| matches!(r, Request::Batch { .. })) {
        return Response::Error(Error::InvalidInput("a batch inside a batch".into()));
    }
    let responses =
        futures_util::future::join_all(requests.into_iter().map(|r| handler.handle(r))).await;
    Response::Batch { responses }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::command::CatalogOutcome;
    use crate::types::ItemId;
    use async_trait::async_trait;
    use tokio::sync::Semaphore;

    /// Records every RPC (the items of its buys); answers each once `gate`
    /// gives it a permit. A buy of item 0 is refused by the "node"; any
    /// other is answered with its item as the lsn.
    struct Gated {
        rpcs: Mutex<Vec<Vec<ItemId>>>,
        /// Whether each RPC came as a `Batch`.
        wrapped: Mutex<Vec<bool>>,
        gate: Semaphore,
        reply: Reply,
    }

    #[derive(Clone, Copy)]
    enum Reply {
        Answers,
        /// The first RPC is answered, every later one lost.
        LostAfterFirst,
        Lost,
        OneShort,
    }

    fn item_of(request: &Request) -> ItemId {
        match request {
            Request::Buy { item, .. } => *item,
            other => panic!("{other:?}"),
        }
    }

    fn reply_to(item: ItemId) -> Response {
        match item {
            0 => Response::Error(Error::InvalidInput("no item 0".into())),
            lsn => Response::Catalog {
                outcome: CatalogOutcome::Forgot(0),
                lsn,
            },
        }
    }

    #[async_trait]
    impl Transport for Gated {
        async fn call(&self, _: &NodeId, request: Request, _: Duration) -> Result<Response> {
            let (items, wrapped) = match &request {
                Request::Batch { requests } => (requests.iter().map(item_of).collect(), true),
                one => (vec![item_of(one)], false),
            };
            let call = {
                let mut rpcs = self.rpcs.lock();
                rpcs.push(items.clone());
                self.wrapped.lock().push(wrapped);
                rpcs.len()
            };
            self.gate.acquire().await.expect("open").forget();
            match self.reply {
                Reply::Answers => {}
                Reply::LostAfterFirst if call == 1 => {}
                Reply::Lost | Reply::LostAfterFirst => return Err(Error::Transport("lost".into())),
                Reply::OneShort if wrapped => {
                    return Ok(Response::Batch {
                        responses: items[1..].iter().map(|i| reply_to(*i)).collect(),
                    })
                }
                Reply::OneShort => {}
            }
            if wrapped {
                let responses = items.iter().map(|i| reply_to(*i)).collect();
                Ok(Response::Batch { responses })
            } else {
                into_result(reply_to(items[0]))
            }
        }
    }

    struct Setup {
        coalescer: Arc<Coalescer>,
        transport: Arc<Gated>,
    }

    fn setup(slots: usize, max_batch: usize, reply: Reply) -> Setup {
        Setup {
            coalescer: Arc::new(Coalescer::new(slots, max_batch)),
            transport: Arc::new(Gated {
                rpcs: Mutex::new(Vec::new()),
                wrapped: Mutex::new(Vec::new()),
                gate: Semaphore::new(0),
                reply,
            }),
        }
    }

    impl Setup {
        /// Starts a buy of `item` on node "n" and lets it run as far as it
        /// can.
        async fn buy(&self, item: ItemId) -> tokio::task::JoinHandle<Result<Response>> {
            let (coalescer, transport) = (self.coalescer.clone(), self.transport.clone());
            let task = tokio::spawn(async move {
                let request = Request::Buy {
                    request: format!("r{item}"),
                    item,
                    qty: 1,
                };
                let node = NodeId::new("n");
                coalescer
                    .call(transport.as_ref(), &node, request, Duration::from_secs(1))
                    .await
            });
            settle().await;
            task
        }

        fn rpcs(&self) -> Vec<Vec<ItemId>> {
            self.transport.rpcs.lock().clone()
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

    fn lsn_of(answer: Result<Response>) -> u64 {
        match answer.expect("answered") {
            Response::Catalog { lsn, .. } => lsn,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_call_with_a_free_slot_goes_at_once_alone_and_unwrapped() {
        let s = setup(2, 64, Reply::Answers);
        let (a, b) = (s.buy(1).await, s.buy(2).await);
        assert_eq!(s.rpcs(), [vec![1], vec![2]], "two slots, two lone calls");
        assert_eq!(*s.transport.wrapped.lock(), [false, false]);
        s.release(2).await;
        assert_eq!(lsn_of(a.await.unwrap()), 1);
        assert_eq!(lsn_of(b.await.unwrap()), 2);
    }

    #[tokio::test]
    async fn calls_beyond_the_slots_share_one_batch_and_each_gets_its_own_answer() {
        let s = setup(1, 64, Reply::Answers);
        let first = s.buy(1).await;
        let mut queued = Vec::new();
        for item in [2, 0, 4, 5] {
            queued.push((item, s.buy(item).await));
        }
        assert_eq!(s.rpcs(), [vec![1]], "the others wait for the slot");
        s.release(2).await;
        assert_eq!(s.rpcs(), [vec![1], vec![2, 0, 4, 5]]);
        assert_eq!(*s.transport.wrapped.lock(), [false, true]);
        assert_eq!(lsn_of(first.await.unwrap()), 1);
        for (item, task) in queued {
            let answer = task.await.unwrap();
            if item == 0 {
                let e = answer.expect_err("the node refused this one");
                assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
            } else {
                assert_eq!(lsn_of(answer), item, "its own answer");
            }
        }
    }

    #[tokio::test]
    async fn a_batch_holds_at_most_max_batch_calls() {
        let s = setup(1, 2, Reply::Answers);
        let mut tasks = vec![s.buy(1).await];
        for item in 2..=6 {
            tasks.push(s.buy(item).await);
        }
        s.release(4).await;
        assert_eq!(s.rpcs(), [vec![1], vec![2, 3], vec![4, 5], vec![6]]);
        for (task, item) in tasks.into_iter().zip(1..) {
            assert_eq!(lsn_of(task.await.unwrap()), item);
        }
    }

    #[tokio::test]
    async fn a_lost_batch_fails_its_calls_and_those_behind_retryably_and_frees_its_slot() {
        let s = setup(1, 2, Reply::LostAfterFirst);
        let first = s.buy(1).await;
        let mut queued = Vec::new();
        for item in 2..=5 {
            queued.push(s.buy(item).await);
        }
        s.release(2).await;
        assert_eq!(lsn_of(first.await.unwrap()), 1);
        assert_eq!(
            s.rpcs(),
            [vec![1], vec![2, 3]],
            "4 and 5 fail with the batch ahead, without an RPC"
        );
        for task in queued {
            let e = task.await.unwrap().expect_err("lost");
            assert!(e.is_retryable(), "{e:?}");
        }
        let after = s.buy(6).await;
        assert_eq!(s.rpcs().last(), Some(&vec![6]), "the slot is free");
        s.release(1).await;
        assert!(after.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_lost_lone_call_fails_the_calls_queued_behind_it() {
        let s = setup(1, 64, Reply::Lost);
        let first = s.buy(1).await;
        let behind = s.buy(2).await;
        s.release(1).await;
        assert!(first.await.unwrap().is_err());
        let e = behind
            .await
            .unwrap()
            .expect_err("failed with the call ahead");
        assert!(e.is_retryable(), "{e:?}");
        assert_eq!(s.rpcs(), [vec![1]]);
    }

    #[tokio::test]
    async fn a_lone_call_refused_by_the_node_does_not_fail_the_calls_behind_it() {
        let s = setup(1, 64, Reply::Answers);
        let refused = s.buy(0).await;
        let behind = s.buy(2).await;
        s.release(2).await;
        let e = refused.await.unwrap().expect_err("refused");
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        assert_eq!(lsn_of(behind.await.unwrap()), 2);
        assert_eq!(s.rpcs(), [vec![0], vec![2]]);
    }

    #[tokio::test]
    async fn a_reply_of_the_wrong_length_is_a_transport_error_for_every_call() {
        let s = setup(1, 64, Reply::OneShort);
        let first = s.buy(1).await;
        let (a, b) = (s.buy(2).await, s.buy(3).await);
        s.release(2).await;
        assert_eq!(lsn_of(first.await.unwrap()), 1, "alone: no length to check");
        for task in [a, b] {
            assert!(matches!(task.await.unwrap(), Err(Error::Transport(_))));
        }
    }

    #[tokio::test]
    async fn a_waiter_gone_before_its_turn_is_skipped_and_the_slot_not_lost() {
        let s = setup(1, 1, Reply::Answers);
        let first = s.buy(1).await;
        let (gone, next) = (s.buy(2).await, s.buy(3).await);
        gone.abort();
        settle().await;
        s.release(1).await;
        assert_eq!(lsn_of(first.await.unwrap()), 1);
        assert_eq!(s.rpcs(), [vec![1], vec![3]], "2 went away, 3 leads");
        s.release(1).await;
        assert_eq!(lsn_of(next.await.unwrap()), 3);
        let after = s.buy(4).await;
        assert_eq!(s.rpcs().last(), Some(&vec![4]), "the slot is free");
        s.release(1).await;
        assert_eq!(lsn_of(after.await.unwrap()), 4);
    }

    /// Answers every request with its item as the lsn.
    struct Echo;

    #[async_trait]
    impl Handler for Echo {
        async fn handle(&self, request: Request) -> Response {
            reply_to(item_of(&request))
        }
    }

    fn buy(item: ItemId) -> Request {
        Request::Buy {
            request: format!("r{item}"),
            item,
            qty: 1,
        }
    }

    #[tokio::test]
    async fn a_node_answers_each_request_of_a_batch_in_order() {
        let reply = answer(&Echo, vec![buy(3), buy(0), buy(7)]).await;
        let Response::Batch { responses } = reply else {
            panic!("{reply:?}");
        };
        assert!(matches!(responses[0], Response::Catalog { lsn: 3, .. }));
        assert!(matches!(
            responses[1],
            Response::Error(Error::InvalidInput(_))
        ));
        assert!(matches!(responses[2], Response::Catalog { lsn: 7, .. }));
    }

    #[tokio::test]
    async fn a_node_refuses_an_oversized_or_nested_batch_whole() {
        let big = (1..=MAX_BATCH as ItemId + 1).map(buy).collect();
        assert!(matches!(
            answer(&Echo, big).await,
            Response::Error(Error::InvalidInput(_))
        ));
        let nested = vec![
            buy(1),
            Request::Batch {
                requests: vec![buy(2)],
            },
        ];
        assert!(matches!(
            answer(&Echo, nested).await,
            Response::Error(Error::InvalidInput(_))
        ));
    }
}
