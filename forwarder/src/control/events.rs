//! What the control plane tells the outside world while it runs: structured
//! [`Event`]s handed to an [`Events`] sink. The library never prints; the
//! `dnlb` binary writes events to stdout, as one readable line each
//! (`Display`) or as JSON lines (`serde`), and tests read the JSON.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::status::Report;

/// Why a new snapshot was published without a reload or an API change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Republish {
    /// A backend's health changed.
    Health,
    /// A drain deadline passed.
    Drain,
}

impl Republish {
    /// The word used in event lines and logs.
    pub fn name(self) -> &'static str {
        match self {
            Republish::Health => "health",
            Republish::Drain => "drain",
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The admin API listens.
    AdminListening {
        /// `http://ADDR:PORT`.
        url: String,
    },
    /// Workers run; the gateway forwards.
    Ready {
        /// Gateway name.
        gateway: String,
        /// Worker lcores.
        lcores: Vec<u32>,
        /// Port names.
        ports: Vec<String>,
    },
    /// A reload was published.
    Reloaded {
        /// The new generation.
        generation: u64,
        /// Maglev tables built for it.
        tables_rebuilt: usize,
    },
    /// A reload was rejected; the running configuration is unchanged.
    ReloadRejected {
        /// Why.
        error: String,
    },
    /// A run-time change from the admin API was published.
    Changed {
        /// What changed.
        change: String,
        /// The new generation.
        generation: u64,
        /// Maglev tables built for it.
        tables_rebuilt: usize,
    },
    /// A snapshot was published for a health change or a drain deadline.
    Republished {
        /// Why.
        cause: Republish,
        /// The new generation.
        generation: u64,
        /// Maglev tables built for it.
        tables_rebuilt: usize,
    },
    /// A backend's health state flipped.
    Health {
        /// Target group.
        group: String,
        /// Backend address.
        backend: String,
        /// The new state.
        healthy: bool,
    },
    /// BIRD announces exactly these VIPs now.
    RoutesAnnounced {
        /// The VIPs.
        vips: Vec<String>,
    },
    /// BIRD did not take a change (retried with back-off). Told for the
    /// first failure of a run, then at most once per 30 s.
    RoutesFailed {
        /// Why.
        error: String,
        /// Failures in a row so far.
        failures: u64,
    },
    /// Every VIP was withdrawn for shutdown; forwarding goes on this long.
    RoutesWithdrawn {
        /// Milliseconds of forwarding left.
        forwarding_ms: u64,
    },
    /// BIRD did not take the shutdown's withdrawal in time: the VIPs may
    /// still be announced. dnlb stops without the withdrawal delay.
    RoutesNotWithdrawn {
        /// Why.
        error: String,
    },
    /// Periodic worker totals (`--stats-interval-ms`).
    Stats {
        /// Seconds since start.
        uptime_secs: f64,
        /// Packets received, all workers.
        rx_packets: u64,
        /// Packets sent, all workers.
        tx_packets: u64,
        /// Packets dropped, all workers.
        dropped: u64,
        /// Idle back-off sleeps, all workers.
        idle_sleeps: u64,
        /// Receive rate over the last interval.
        rx_pps: f64,
        /// Send rate over the last interval.
        tx_pps: f64,
        /// Share of the workers' time spent on iterations that received
        /// packets over the last interval, in percent of all workers.
        busy_percent: f64,
        /// Time-stamp counter cycles per packet received over the last
        /// interval, busy time only (0 without packets).
        cycles_per_packet: f64,
    },
    /// The forwarder stopped; what it did.
    Stopped {
        /// Final counters (boxed: the other events are small).
        report: Box<Report>,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::AdminListening { url } => write!(f, "admin: listening on {url}"),
            Event::Ready {
                gateway,
                lcores,
                ports,
            } => write!(
                f,
                "dnlb: ready: gateway {gateway} with {} worker(s) on lcores {lcores:?}, ports {ports:?}",
                lcores.len()
            ),
            Event::Reloaded {
                generation,
                tables_rebuilt,
            } => write!(
                f,
                "reload: ok generation={generation} tables_rebuilt={tables_rebuilt}"
            ),
            Event::ReloadRejected { error } => {
                write!(f, "reload: rejected: {}", error.replace('\n', "; "))
            }
            Event::Changed {
                change,
                generation,
                tables_rebuilt,
            } => write!(
                f,
                "api: {change}: generation={generation} tables_rebuilt={tables_rebuilt}"
            ),
            Event::Republished {
                cause,
                generation,
                tables_rebuilt,
            } => write!(
                f,
                "{}: published generation={generation} tables_rebuilt={tables_rebuilt}",
                cause.name()
            ),
            Event::Health {
                group,
                backend,
                healthy,
            } => write!(
                f,
                "health: group={group} backend={backend} {}",
                if *healthy { "up" } else { "down" }
            ),
            Event::RoutesAnnounced { vips } => write!(f, "routes: announced [{}]", vips.join(", ")),
            Event::RoutesFailed { error, failures } => {
                write!(f, "routes: failed ({failures} in a row): {error}")
            }
            Event::RoutesWithdrawn { forwarding_ms } => write!(
                f,
                "routes: withdrawn; forwarding for {forwarding_ms} ms more"
            ),
            Event::RoutesNotWithdrawn { error } => write!(
                f,
                "routes: NOT withdrawn (VIPs may still be announced): {error}"
            ),
            Event::Stats {
                uptime_secs,
                rx_packets,
                tx_packets,
                dropped,
                idle_sleeps,
                rx_pps,
                tx_pps,
                busy_percent,
                cycles_per_packet,
            } => write!(
                f,
                "stats: t={uptime_secs:.3} rx_packets={rx_packets} tx_packets={tx_packets} dropped={dropped} idle_sleeps={idle_sleeps} rx_pps={rx_pps:.0} tx_pps={tx_pps:.0} busy={busy_percent:.1}% cycles_per_packet={cycles_per_packet:.0}"
            ),
            Event::Stopped { report } => report.fmt(f),
        }
    }
}

/// A function events are handed to.
type Sink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Where events go: a cheap, clonable handle over one sink shared by the
/// control, health and routing threads. The default discards everything.
#[derive(Clone, Default)]
pub struct Events {
    sink: Option<Sink>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Events {
    /// Events go to `sink` (called on whichever thread emits; it must not
    /// block for long).
    pub fn to(sink: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Events {
            sink: Some(Arc::new(sink)),
        }
    }

    /// Hands `e` to the sink.
    pub fn emit(&self, e: Event) {
        if let Some(s) = &self.sink {
            s(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn events_are_json_with_an_event_tag_and_lines_for_people() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let events = Events::to(move |e| s2.lock().unwrap().push(e.clone()));
        events.emit(Event::Republished {
            cause: Republish::Drain,
            generation: 7,
            tables_rebuilt: 1,
        });
        Events::default().emit(Event::RoutesFailed {
            error: "nobody listens".into(),
            failures: 1,
        });
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "the default sink discards");
        let json = serde_json::to_value(&seen[0]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "republished", "cause": "drain", "generation": 7, "tables_rebuilt": 1})
        );
        assert_eq!(
            seen[0].to_string(),
            "drain: published generation=7 tables_rebuilt=1"
        );
    }
}
