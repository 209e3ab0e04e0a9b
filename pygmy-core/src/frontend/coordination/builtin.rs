//! The built-in coordinator: one front end, its view records in a durable
//! [`RecordStore`] on its own disk, always the leader.
//!
//! With one front end there is nobody to coordinate with, so leadership is
//! always granted and the only live front end is this one. The revision is
//! kept in memory (it starts at 0 on every start, with the records the
//! store loads): only this process stores records, so a compare-and-swap
//! against it still catches a decision made from records that a
//! concurrent store (a confirmation racing a view change) replaced. A store
//! returns only once the record store has made the records durable, as
//! [`RecordStore::save`] promises; the file format is the one of earlier
//! releases, so a restarted front end resumes from its record.

use super::{conflict, Coordinator, Guard, Leadership, Revision, Snapshot};
use crate::error::Result;
use crate::frontend::RecordStore;
use crate::types::NodeId;
use crate::view::GroupRecord;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::time::Duration;

/// The one term the built-in coordinator ever grants.
const TERM: u64 = 1;

pub struct Builtin {
    me: NodeId,
    store: Box<dyn RecordStore>,
    /// The records last stored (or loaded) and their revision; the lock
    /// also makes compare-and-swap atomic with the save.
    state: Mutex<Snapshot>,
}

impl Builtin {
    /// Opens the record store and loads its records (revision 0).
    pub fn open(me: NodeId, store: Box<dyn RecordStore>) -> Result<Self> {
        let records = store.load()?;
        Ok(Builtin {
            me,
            store,
            state: Mutex::new(Snapshot {
                records,
                revision: 0,
            }),
        })
    }

    /// The records and revision held now (no I/O).
    pub fn snapshot(&self) -> Snapshot {
        self.state.lock().clone()
    }
}

#[async_trait]
impl Coordinator for Builtin {
    async fn load(&self) -> Result<Snapshot> {
        Ok(self.snapshot())
    }

    async fn store(
        &self,
        guard: Guard,
        expected: Revision,
        records: &[GroupRecord],
    ) -> Result<Revision> {
        let mut state = self.state.lock();
        if state.revision != expected {
            return Err(conflict("another store came first"));
        }
        if let Guard::Leader(l) = guard {
            if l.term != TERM {
                return Err(conflict("not the leader"));
            }
        }
        // Durable before it counts (and before the caller announces it).
        self.store.save(records)?;
        state.records = records.to_vec();
        state.revision += 1;
        Ok(state.revision)
    }

    async fn campaign(&self) -> Result<Option<Leadership>> {
        Ok(Some(Leadership { term: TERM }))
    }

    async fn register(&self) -> Result<Vec<NodeId>> {
        Ok(vec![self.me.clone()])
    }

    fn lease(&self) -> Duration {
        // Never expires: nobody else could take over.
        Duration::MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::files::memfs::MemFs;
    use crate::files::record::RecordFile;
    use crate::types::Group;
    use crate::view::View;

    fn record(epoch: u64) -> GroupRecord {
        let v = View {
            group: Group::Catalog,
            epoch,
            primary: NodeId("c1".into()),
            backups: vec![],
        };
        GroupRecord {
            current: v,
            confirmed: None,
            disks: Default::default(),
        }
    }

    #[tokio::test]
    async fn stores_are_compare_and_swap_and_durable() {
        let fs = MemFs::new();
        let open = || {
            Builtin::open(
                NodeId("fe".into()),
                Box::new(RecordFile::new(fs.clone(), "/views")),
            )
            .unwrap()
        };
        let c = open();
        let lead = c.campaign().await.unwrap().expect("always the leader");
        let r1 = c.store(Guard::Leader(lead), 0, &[record(1)]).await.unwrap();
        assert!(r1 > 0);
        let stale = c.store(Guard::Leader(lead), 0, &[record(2)]).await;
        assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
        let forged = Guard::Leader(Leadership { term: TERM + 1 });
        assert!(matches!(
            c.store(forged, r1, &[record(2)]).await,
            Err(Error::Conflict(_))
        ));
        assert_eq!(c.load().await.unwrap().records, vec![record(1)]);
        c.store(Guard::Revision, r1, &[record(3)]).await.unwrap();
        assert_eq!(open().snapshot().records, vec![record(3)], "reloaded");
        assert_eq!(c.register().await.unwrap(), vec![NodeId("fe".into())]);
    }
}
