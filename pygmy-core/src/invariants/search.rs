//! The linearizability search shared by invariant 4 (`linearizable.rs`:
//! buys and restocks against a stock counter) and the fresh-read check
//! (`fresh.rs`: every operation, reads included, against `(stock, cost)`).
//! Both check one item at a time (linearizability is local); they differ
//! only in their operations and states, which they describe through
//! [`Ops`].
//!
//! The search is Wing & Gong's, with Lowe's memoisation: a depth-first
//! search that extends a linearized prefix by one operation at a time. Only
//! *minimal* operations may come next — those invoked no later than the
//! earliest completion among the operations not yet linearized (anything
//! invoked after that completion must follow it). Operations are sorted by
//! invocation, so the minimal ones are a prefix of those left. A state of
//! the search is the set of linearized operations plus the item's state;
//! the future depends on nothing else, so one seen once is never explored
//! again. Definite operations are tried before indeterminate ones (an
//! indeterminate one is only placed where an answer, or the final state,
//! needs it). A minimal operation that changes no state ([`Ops::is_read`])
//! and fits now is taken at once, with no alternative tried: moving it to
//! the current point keeps every real-time constraint (nothing left
//! completed before it was invoked) and every answer. The number of states
//! is capped: an exhausted budget is a result of its own
//! ([`Stop::Exhausted`]), never a pass.

use std::collections::HashSet;
use std::hash::Hash;

/// One item's operations, sorted by invocation, as the search sees them.
pub(crate) trait Ops {
    /// The item's state between operations.
    type State: Copy + Eq + Hash;

    fn len(&self) -> usize;
    fn invoked(&self, k: usize) -> u64;
    /// `u64::MAX` when indeterminate: it orders nothing after it.
    fn completed(&self, k: usize) -> u64;
    /// Whether operation `k` got an answer: it must be linearized.
    fn is_definite(&self, k: usize) -> bool;
    /// Whether operation `k` changes no state (see the module docs).
    fn is_read(&self, k: usize) -> bool;
    /// The state after operation `k` from `state`, if it gets its recorded
    /// answer there (any answer, when indeterminate).
    fn step(&self, k: usize, state: Self::State) -> Option<Self::State>;

    /// Operations not in `done` that may come next: invoked no later than
    /// the earliest completion among those left.
    fn minimal<'a>(&'a self, done: &'a Bits) -> impl Iterator<Item = usize> + 'a {
        let earliest = (0..self.len())
            .filter(|&k| !done.contains(k))
            .map(|k| self.completed(k))
            .min()
            .unwrap_or(u64::MAX);
        (0..self.len())
            .filter(move |&k| !done.contains(k))
            .take_while(move |&k| self.invoked(k) <= earliest)
    }
}

/// Why [`search`] found no linearization.
pub(crate) enum Stop<S> {
    /// There is none. `deepest` is the longest prefix that fit, `state` the
    /// state after it, and `stuck` the first (at most four) definite
    /// operations that could come next, none of which fits.
    None {
        deepest: Vec<usize>,
        state: S,
        stuck: Vec<usize>,
    },
    /// More than the budget's states were explored without an answer.
    Exhausted,
}

/// A linearization: `(operation, state after it)`, in order.
pub(crate) type Order<S> = Vec<(usize, S)>;

/// A linearization of every definite operation (and some indeterminate
/// ones) from `start` to a state `is_goal` accepts, exploring at most
/// `budget` states.
pub(crate) fn search<O: Ops>(
    ops: &O,
    start: O::State,
    is_goal: impl Fn(O::State) -> bool,
    budget: usize,
) -> Result<Order<O::State>, Stop<O::State>> {
    let definite_total = (0..ops.len()).filter(|&k| ops.is_definite(k)).count();
    let root = frame(ops, Bits::new(ops.len()), start, 0, None);
    let mut visited: HashSet<(Bits, O::State)> = HashSet::new();
    visited.insert((root.done.clone(), start));
    let mut stack = vec![root];
    // The longest prefix reached, for the report if there is no answer.
    let mut deepest: Vec<usize> = Vec::new();
    loop {
        let Some(top) = stack.last() else {
            return Err(no_linearization(ops, start, deepest));
        };
        if top.definite_done == definite_total && is_goal(top.state) {
            return Ok(stack
                .iter()
                .filter_map(|f| f.via.map(|k| (k, f.state)))
                .collect());
        }
        let Some(&(k, after)) = top.next.get(top.tried) else {
            stack.pop();
            continue;
        };
        let mut done = top.done.clone();
        done.insert(k);
        let definite_done = top.definite_done + usize::from(ops.is_definite(k));
        if let Some(top) = stack.last_mut() {
            top.tried += 1;
        }
        if !visited.insert((done.clone(), after)) {
            continue;
        }
        if visited.len() > budget {
            return Err(Stop::Exhausted);
        }
        stack.push(frame(ops, done, after, definite_done, Some(k)));
        if stack.len() - 1 > deepest.len() {
            deepest = stack.iter().filter_map(|f| f.via).collect();
        }
    }
}

/// A set of operations, by position in the item's sorted list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Bits(Box<[u64]>);

impl Bits {
    fn new(len: usize) -> Self {
        Bits(vec![0; len.div_ceil(64)].into_boxed_slice())
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

/// One node of the depth-first search: a linearized prefix.
struct Frame<S> {
    done: Bits,
    state: S,
    definite_done: usize,
    /// The operation that led here (`None` at the root).
    via: Option<usize>,
    /// `(operation, state after it)` to try next, in order.
    next: Vec<(usize, S)>,
    tried: usize,
}

fn frame<O: Ops>(
    ops: &O,
    done: Bits,
    state: O::State,
    definite_done: usize,
    via: Option<usize>,
) -> Frame<O::State> {
    let mut definite = Vec::new();
    let mut indeterminate = Vec::new();
    let mut read = None;
    for k in ops.minimal(&done) {
        let Some(after) = ops.step(k, state) else {
            continue;
        };
        if ops.is_read(k) {
            // A minimal read that fits now goes now (module docs).
            read = Some((k, after));
            break;
        }
        if ops.is_definite(k) {
            definite.push((k, after));
        } else {
            indeterminate.push((k, after));
        }
    }
    let next = match read {
        Some(r) => vec![r],
        None => {
            definite.extend(indeterminate);
            definite
        }
    };
    Frame {
        done,
        state,
        definite_done,
        via,
        next,
        tried: 0,
    }
}

/// The report of a failed search: the longest prefix that fit, the state
/// after it, and the definite operations none of which could extend it.
fn no_linearization<O: Ops>(ops: &O, start: O::State, deepest: Vec<usize>) -> Stop<O::State> {
    let mut done = Bits::new(ops.len());
    let mut state = start;
    for &k in &deepest {
        done.insert(k);
        state = ops.step(k, state).unwrap_or(state);
    }
    let stuck = ops
        .minimal(&done)
        .filter(|&k| ops.is_definite(k))
        .take(4)
        .collect();
    Stop::None {
        deepest,
        state,
        stuck,
    }
}
