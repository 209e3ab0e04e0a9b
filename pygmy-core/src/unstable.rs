//! The layers behind the library's API, for Pygmy's own adapters
//! (`pygmy-net`, `pygmy-sim`, the `pygmy` binary), benches and fuzzers.
//!
//! **Unstable**: everything here may change in any release, without
//! notice. A program that embeds Pygmy uses the items at the crate root
//! ([`Store`](crate::Store) and its types); one that needs something from
//! here is asking for a new item there.
//!
//! Each module re-exports one layer, under the name of its folder in
//! `pygmy-core/src` (the map is in the crate's front page).

/// Shared values: ids, books, log positions (`types.rs`).
pub mod types {
    pub use crate::types::*;
}

/// Views of a group (`view.rs`).
pub mod view {
    pub use crate::view::*;
}

/// The state machines: catalog, order ledger and its archive, log
/// commands (`state/`).
pub mod state {
    pub use crate::state::*;
}

/// The small file-system trait, an in-memory disk, the record framing and
/// the single-record file (`files/`).
pub mod files {
    pub use crate::files::*;
}

/// The storage boundary of a replica and the log store (`storage/`).
pub mod storage {
    pub use crate::storage::*;
}

/// Messages between nodes, the transport trait, the in-process transport
/// (`transport/`).
pub mod transport {
    pub use crate::transport::*;
}

/// A replica of either group: log shipping, view start, resync
/// (`replication/`).
pub mod replication {
    pub use crate::replication::*;
}

/// The services on top of replication: the buy saga, the catalog's
/// invalidation push (`services/`).
pub mod services {
    pub use crate::services::*;
}

/// The front end: view service, reads, writes (`frontend/`).
pub mod frontend {
    pub use crate::frontend::*;
}

/// The whole store in one process (`store.rs`).
pub mod store {
    pub use crate::store::*;
}
