//! Pygmy embedded in a program, durable: the replicated store (front end,
//! two catalog and two order replicas) in one process, every node keeping
//! its files in a folder on the real disk. The program buys a book under an
//! idempotency key, stops the store, starts a new one on the same folder,
//! and finds the order there; retrying the buy under its key buys nothing
//! more.
//!
//! ```text
//! cargo run --example durable              # in a new temporary folder
//! cargo run --example durable -- DIR       # in DIR (run it twice)
//! ```
//!
//! A test runs the same scenario (`tests/durable.rs`).

use pygmy_core::Store;
use pygmy_net::stdfs::StdFs;
use std::path::{Path, PathBuf};
use std::time::Duration;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("pygmy-durable-{}", std::process::id())),
    };
    println!("keeping the store in {}", dir.display());
    let (first, second) = scenario(&dir, |line| println!("{line}")).await?;
    assert_eq!(first, second, "the retried buy made a second order");
    Ok(())
}

/// Starts a store on `dir`, buys book 3 under the key `durable-example`,
/// stops it, starts another on the same folder, reads the order back and
/// retries the buy. Returns the order as bought and as the retry answered
/// it (the same order, if the store is durable and the buy idempotent);
/// `say` gets each line of the story.
pub async fn scenario(
    dir: &Path,
    say: impl Fn(String),
) -> Result<(pygmy_core::Order, pygmy_core::Order), Error> {
    let store = Store::builder().durable(StdFs, dir).start().await?;
    let order = store.buy_once(3, 1, "durable-example").await?;
    say(format!(
        "order {}: {:?}, {} left",
        order.id, order.title, order.remaining
    ));
    // Waits until no node touches the folder any more.
    store.stop(Duration::from_secs(5)).await?;

    let store = Store::builder().durable(StdFs, dir).start().await?;
    let found = store.order(order.id).await?;
    say(format!(
        "after a restart, order {} is still there",
        found.id
    ));
    if found != order {
        return Err(format!("order {} changed across the restart", order.id).into());
    }
    let again = store.buy_once(3, 1, "durable-example").await?;
    let book = store.lookup(3).await?;
    say(format!(
        "retrying the buy answered order {}; book 3 has {} left",
        again.id, book.count
    ));
    Ok((order, again))
}
