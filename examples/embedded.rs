//! Pygmy embedded in a program: the replicated store (front end, two
//! catalog and two order replicas) in one process over the in-process
//! transport, with a replica crash and restart in the middle.
//!
//! ```text
//! cargo run --example embedded
//! ```
//!
//! Every read reflects every write acknowledged before it, whichever
//! replica answers it: book 2 always ends two copies down. A test runs this
//! same scenario a thousand times (`pygmy-core/tests/embedded.rs`).

use pygmy_core::{Group, Store, StoreBuilder};

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (before, after) = scenario(Store::builder(), |line| println!("{line}")).await?;
    assert_eq!(after + 2, before, "a read missed an acknowledged buy");
    Ok(())
}

/// Browses, buys book 2, crashes the order primary, buys book 2 again
/// during the failover, restarts the crashed replica and looks book 2 up.
/// Returns book 2's copies as the first search showed them and as the last
/// lookup did; `say` gets each line of the story.
pub async fn scenario(builder: StoreBuilder, say: impl Fn(String)) -> Result<(u64, u64), Error> {
    let store = builder.start().await?;

    let mut before = None;
    for book in store.search("distributed systems").await? {
        say(format!(
            "{:>2}  {:<55} ${:<3} {} left",
            book.id, book.title, book.cost, book.count
        ));
        if book.id == 2 {
            before = Some(book.count);
        }
    }
    let before = before.ok_or("book 2 is not in the catalog")?;
    let order = store.buy_once(2, 1, "my-first-order").await?;
    say(format!("bought {:?} as order {}", order.title, order.id));

    // Crash the order primary; the next buy fails over to the backup.
    let primary = store
        .primary(Group::Order)
        .ok_or("the order group has no view")?;
    say(format!("crashing {primary}"));
    store.crash(&primary)?;
    let order = store.buy(2, 1).await?;
    say(format!(
        "bought again as order {} during the failover",
        order.id
    ));
    store.restart(&primary)?;
    let after = store.lookup(2).await?.count;
    say(format!(
        "{primary} restarted; book 2 has {after} copies left"
    ));
    Ok((before, after))
}
