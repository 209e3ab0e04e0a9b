//! Views: who is the primary of a group, and who are its backups, in which
//! epoch. The front end (the view service) chooses them; see `viewservice.rs`.

use crate::types::{Epoch, Group, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `(epoch, primary, backups)` of one group. A replica rejects any message
/// carrying an older epoch than the view it has accepted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct View {
    pub group: Group,
    pub epoch: Epoch,
    pub primary: NodeId,
    pub backups: Vec<NodeId>,
}

impl View {
    /// The primary first, then the backups.
    pub fn members(&self) -> impl Iterator<Item = &NodeId> {
        std::iter::once(&self.primary).chain(self.backups.iter())
    }

    pub fn contains(&self, node: &NodeId) -> bool {
        self.members().any(|m| m == node)
    }

    pub fn is_primary(&self, node: &NodeId) -> bool {
        &self.primary == node
    }
}

/// What the view service keeps durably for one group: the view it last
/// announced, and the last view whose primary confirmed it (synced its
/// backups, so every member of it holds every committed entry). A new
/// primary is only ever chosen among the members of `confirmed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub current: View,
    pub confirmed: Option<View>,
    /// The disk identity of each member of `confirmed`, as its primary saw
    /// them when it confirmed it: a member whose disk is no longer that one
    /// (replaced, emptied, or set aside as damaged) does not hold the
    /// committed entries. Empty in records from before disk identities.
    #[serde(default)]
    pub disks: BTreeMap<NodeId, u64>,
}

impl GroupRecord {
    /// True when the current view has been confirmed by its primary.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed.as_ref().map(|v| v.epoch) == Some(self.current.epoch)
    }

    /// Whether `disk` is the disk the record holds for `node` (true when it
    /// holds none: a member outside the confirmed view, or an old record).
    pub fn disk_matches(&self, node: &NodeId, disk: u64) -> bool {
        self.disks.get(node).is_none_or(|d| *d == disk)
    }
}
