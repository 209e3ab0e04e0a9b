//! `pygmy check`: the verdict `pygmy chaos` gives at its end, on any running
//! cluster described by a configuration file (one started by `up`, by
//! compose, or node by node on several machines), for tests that break the
//! cluster by other means (`docker kill`, `docker pause`, a cut link).
//!
//! It waits until the cluster has settled (every replica up and in its
//! group's view, each group's replicas at one commit, no buy pending), reads
//! every replica's committed state over the internal RPC, and checks the
//! invariants with the very code `chaos` uses: each group's replicas hold
//! identical states, every item balances (`initial + restocked - stock =
//! copies in committed orders`), and every order id in `--orders` (those
//! acknowledged to a client) is on every order replica.

use crate::chaos::{check_states, settle_and_read, verdict_text, GroupEnd};
use crate::config::ClusterConfig;
use crate::inspect::Inspector;
use crate::load::parse_duration;
use pygmy_core::invariants::ItemBalance;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct CheckArgs {
    /// The cluster's configuration.
    #[arg(long)]
    pub config: PathBuf,
    /// A file of order ids acknowledged to clients, one per line: each must
    /// be on every order replica.
    #[arg(long)]
    pub orders: Option<PathBuf>,
    /// How long to wait for the cluster to settle.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub patience: Duration,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `check` found.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub groups: Vec<GroupEnd>,
    pub books: Vec<ItemBalance>,
    pub orders_checked: usize,
    pub orders_missing: Vec<u64>,
    pub buys_pending: usize,
    pub problems: Vec<String>,
    pub ok: bool,
}

/// Reads a list of order ids, one per line (blank lines skipped).
fn read_orders(path: &std::path::Path) -> Result<Vec<u64>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--orders {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim().parse::<u64>().map_err(|_| {
                format!(
                    "--orders {} line {}: {:?} is not an order id",
                    path.display(),
                    i + 1,
                    l.trim()
                )
            })
        })
        .collect()
}

/// `pygmy check`. `Err` only when it could not run at all.
pub async fn run(args: &CheckArgs) -> Result<CheckReport, String> {
    let cfg = ClusterConfig::read(&args.config)?;
    let acknowledged = match &args.orders {
        Some(path) => read_orders(path)?,
        None => Vec::new(),
    };
    let inspector = Inspector::new(&cfg);
    let mut problems = Vec::new();
    let (groups, books, missing, pending) =
        match settle_and_read(&cfg, &inspector, args.patience).await {
            Ok(states) => check_states(&states, &acknowledged, &mut problems),
            Err(e) => {
                problems.push(e);
                (Vec::new(), Vec::new(), Vec::new(), 0)
            }
        };
    let ok = problems.is_empty();
    Ok(CheckReport {
        groups,
        books,
        orders_checked: acknowledged.len(),
        orders_missing: missing,
        buys_pending: pending,
        problems,
        ok,
    })
}

impl CheckReport {
    /// The verdict as text, for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for g in &self.groups {
            out.push_str(&format!("{}\n", g.line()));
        }
        let sold: u64 = self.books.iter().map(|b| b.ordered).sum();
        let unbalanced = self.books.iter().filter(|b| !b.balanced).count();
        out.push_str(&format!(
            "books: {} items, {sold} copies in orders, {unbalanced} unbalanced\n",
            self.books.len()
        ));
        out.push_str(&format!(
            "orders: {} acknowledged checked, {} missing; {} buys pending\n",
            self.orders_checked,
            self.orders_missing.len(),
            self.buys_pending
        ));
        out.push_str(&verdict_text(self.ok, &self.problems));
        out
    }
}
