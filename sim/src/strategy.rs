//! What a gateway does with a packet of a flow its flow table does not know.

use serde::{Deserialize, Serialize};

/// A strategy for flows a gateway's flow table misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Today's dnlb: a flow-table hit, else the gateway's current Maglev
    /// table (a SYN always takes the current table).
    Today,
    /// On a miss by a non-SYN packet, the previous table's backend if it is
    /// still usable, else the current table's.
    PrevTable,
    /// Gateways share the flows whose backend differs from what the current
    /// table picks ("exceptions"); on a miss, a learned exception wins.
    ExceptionSync,
    /// Exception sync, and a gateway adopts a new table in two steps: for
    /// a window (longer than a handshake) it keeps deciding with the old
    /// table and stores the SYNs whose backend the new table would change
    /// (with a short timeout), so a handshake's first ACK finds its flow
    /// after the switch. Not part of the list: added because the
    /// simulator shows exception sync alone loses these handshakes.
    SyncPinned,
    /// `sync-pinned`, and every gateway also shares ahead of time the flows
    /// a zone loss would make exceptions: for each zone Z, the table its
    /// version would have without Z's backends (what the survivors use after
    /// losing Z); a flow whose backend is not in Z and which that table
    /// moves is shared when it starts and when the gateway adopts a version
    /// (a flow whose backend is in Z is orphaned by that loss anyway).
    ZonePresync,
    /// Every flow is shared with every peer (the costly reference).
    FullSync,
}

impl Strategy {
    /// Every strategy, in the order reports list them.
    pub const ALL: [Strategy; 6] = [
        Strategy::Today,
        Strategy::PrevTable,
        Strategy::ExceptionSync,
        Strategy::SyncPinned,
        Strategy::ZonePresync,
        Strategy::FullSync,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Today => "today",
            Strategy::PrevTable => "prev-table",
            Strategy::ExceptionSync => "exception-sync",
            Strategy::SyncPinned => "sync-pinned",
            Strategy::ZonePresync => "zone-presync",
            Strategy::FullSync => "full-sync",
        }
    }

    /// The strategy called `name`.
    pub fn parse(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a miss falls back to the previous table.
    pub fn uses_prev(self) -> bool {
        self == Strategy::PrevTable
    }

    /// Whether a new table is staged and changed SYNs pinned first.
    pub fn pins(self) -> bool {
        matches!(self, Strategy::SyncPinned | Strategy::ZonePresync)
    }

    /// Whether flows a zone loss would move are shared ahead of it.
    pub fn presyncs_zone_loss(self) -> bool {
        self == Strategy::ZonePresync
    }

    /// What the gateways share, if anything.
    pub fn sharing(self) -> Sharing {
        match self {
            Strategy::Today | Strategy::PrevTable => Sharing::Nothing,
            Strategy::ExceptionSync | Strategy::SyncPinned | Strategy::ZonePresync => {
                Sharing::Exceptions
            }
            Strategy::FullSync => Sharing::Everything,
        }
    }
}

/// Which flows gateways tell their peers about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// None.
    Nothing,
    /// Flows whose backend differs from what some gateway's current table
    /// picks.
    Exceptions,
    /// Every flow.
    Everything,
}
