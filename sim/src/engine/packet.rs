//! One sampled packet: the router picks a gateway; the gateway's flow table
//! answers if it tracks the flow (and the backend is usable), else the
//! strategy decides; the backend reached is compared with the one the
//! connection's SYN reached.
//!
//! As in `lb::processor::policy`: a SYN takes the current table and stores
//! nothing; the handshake's first ACK and every later segment store the
//! flow on a miss; a tracked flow whose backend became unusable takes the
//! current table (no fallback); the client's FIN keeps the entry for the
//! closing timeout.

use super::{Sim, CLOSING_MS, IDLE_MS, NONE, PENDING};
use crate::strategy::Sharing;
use crate::workload::{fingerprint, gap_ms, maglev_hash, router_hash, shape};

impl Sim<'_> {
    /// Packet `pkt` of connection `c`, now.
    pub(super) fn packet(&mut self, c: u32) {
        let now = self.now;
        let conn = self.conns[c as usize];
        let n = conn.pkt;
        self.conns[c as usize].pkt += 1;
        self.stats.packets += 1;
        let fin = n > 0 && now >= conn.end;
        let Some(g) = self.router.pick(router_hash(c)) else {
            // No gateway announces the VIP: the packet is lost (TCP
            // retransmits it). A SYN that is lost ends the attempt.
            self.stats.no_gateway += 1;
            if n == 0 {
                self.stats.refused += 1;
                self.finish(c);
            } else {
                self.next_packet(c, fin);
            }
            return;
        };
        let g = g as usize;
        let h = maglev_hash(c);
        if n == 0 {
            match self.syn_pick(g, h) {
                Some(b) => {
                    if !self.fleet.alive(b) {
                        self.stats.syns_to_stopped += 1;
                    }
                    self.conns[c as usize].backend = b;
                    self.pin(c, g, h, b);
                }
                None => {
                    self.stats.refused += 1;
                    self.finish(c);
                    return;
                }
            }
        } else {
            let reached = self.segment(c, g, h, fin);
            if reached != Some(conn.backend) {
                self.moved(c, g, n);
                return;
            }
        }
        self.next_packet(c, fin);
    }

    /// The backend for a SYN at gateway `g`: the current table's; with
    /// `zone-presync`, while a version is staged that makes that backend
    /// unusable (it failed, or was removed), the staged table's if it is
    /// usable now (the connection would otherwise be orphaned at once).
    fn syn_pick(&self, g: usize, h: u64) -> Option<u32> {
        let gw = &self.gws[g];
        let b = gw.view.pick(h);
        match (&gw.staged, b) {
            (Some(s), Some(old)) if self.strategy.presyncs_zone_loss() && !s.usable(old) => {
                s.pick(h).filter(|&n| gw.view.usable(n)).or(b)
            }
            _ => b,
        }
    }

    /// `sync-pinned`: while a new table is staged, a SYN whose backend the
    /// new table would change (or that took the staged table's backend:
    /// [`Sim::syn_pick`]) is stored (short timeout), so that its first ACK
    /// finds it after the switch (or before it).
    fn pin(&mut self, c: u32, g: usize, h: u64, b: u32) {
        let gw = &mut self.gws[g];
        let Some(staged) = gw.staged.as_ref() else {
            return;
        };
        if staged.pick(h) != Some(b) || gw.view.pick(h) != Some(b) {
            let fp = fingerprint(gw.seed, c);
            if gw
                .flows
                .insert(fp, b, self.now, self.sc.sync.pin_timeout_ms)
                .is_err()
            {
                self.stats.table_full += 1;
            }
        }
    }

    /// Schedules the packet after this one, or ends the connection after its
    /// FIN.
    fn next_packet(&mut self, c: u32, fin: bool) {
        if fin {
            self.stats.completed += 1;
            self.finish(c);
            return;
        }
        let conn = self.conns[c as usize];
        let w = &self.sc.workload;
        let gap = if conn.pkt == 1 {
            shape(w, self.sc.seed, c).rtt_ms
        } else {
            gap_ms(w, self.sc.seed, c, conn.pkt)
        };
        let at = self.now.saturating_add(gap).min(conn.end);
        self.schedule_packet(at, c);
    }

    /// A packet of an established connection reached another backend (it
    /// came through gateway `g`).
    fn moved(&mut self, c: u32, g: usize, n: u32) {
        let own = self.conns[c as usize].backend;
        if !self.fleet.alive(own) {
            // Its backend is gone: lost whatever the gateways do.
            self.stats.orphaned += 1;
        } else {
            self.stats.broken += 1;
            if n == 1 {
                self.stats.broken_handshake += 1;
            } else if self.conns[c as usize].unsent {
                self.stats.broken_unsent += 1;
            } else if !self.gws[g].view.knows(own) {
                self.stats.broken_skew += 1;
            }
            if let Some(e) = self.log.last_mut() {
                e.broken += 1;
            }
        }
        self.finish(c);
    }

    /// A non-SYN segment at gateway `g`: the backend it is sent to.
    fn segment(&mut self, c: u32, g: usize, h: u64, fin: bool) -> Option<u32> {
        let now = self.now;
        let gw = &mut self.gws[g];
        let fp = fingerprint(gw.seed, c);
        let timeout = if fin { CLOSING_MS } else { IDLE_MS };
        let mut rescheduled = false;
        if let Some(v) = gw.flows.lookup(fp, now, IDLE_MS) {
            if gw.view.usable(v) {
                if fin {
                    let _ = gw.flows.insert(fp, v, now, CLOSING_MS);
                } else if gw.staged.is_some() {
                    // A pinned SYN's first ACK: the handshake is done, the
                    // flow is shared if the staged table moves it.
                    self.maybe_share(c, g, v, h, false);
                }
                return Some(v);
            }
            rescheduled = true;
        }
        let b = if rescheduled {
            gw.view.pick(h)
        } else {
            self.miss(c, g, h)
        }?;
        let gw = &mut self.gws[g];
        if gw.flows.insert(fp, b, now, timeout).is_err() {
            self.stats.table_full += 1;
        }
        if !fin {
            self.maybe_share(c, g, b, h, false);
        }
        Some(b)
    }

    /// A flow-table miss by a non-SYN packet: the strategy's answer.
    fn miss(&self, c: u32, g: usize, h: u64) -> Option<u32> {
        let gw = &self.gws[g];
        let conn = &self.conns[c as usize];
        if self.strategy.sharing() != Sharing::Nothing
            && conn.shared < PENDING
            && conn.shared <= self.now
            && gw.view.usable(conn.backend)
        {
            // A learned entry: the peer that shared it tracked this flow on
            // the connection's backend.
            return Some(conn.backend);
        }
        if self.strategy.uses_prev() {
            if let Some(b) = gw.prev.as_ref().and_then(|p| p.pick(h)) {
                if gw.view.usable(b) {
                    return Some(b);
                }
            }
        }
        gw.view.pick(h)
    }

    /// After gateway `g` stored connection `c` on backend `b` (or found it
    /// in its walk): queue it for its peers if the strategy shares it (a new
    /// flow only a zone-loss table moves is sent at once with
    /// `presync_at_once`).
    pub(super) fn maybe_share(&mut self, c: u32, g: usize, b: u32, h: u64, walk: bool) {
        if self.conns[c as usize].shared != NONE {
            return;
        }
        let (share, presync) = match self.strategy.sharing() {
            Sharing::Nothing => (false, false),
            Sharing::Everything => (true, false),
            Sharing::Exceptions => {
                // Against every zone's table of the gateway's version, and
                // of its staged version if it has one; a flow whose backend
                // the staged version drops moves anyway (nothing to share).
                // With `zone-presync`, also against their zone-loss tables.
                // A SYN the staged table took because the current table's
                // backend stopped ([`Sim::syn_pick`]) differs only from the
                // outgoing table: not shared for that.
                let gw = &self.gws[g];
                let staged = gw.staged.as_ref();
                let diverted = self.strategy.presyncs_zone_loss()
                    && staged
                        .is_some_and(|s| gw.view.pick(h).is_some_and(|o| o != b && !s.usable(o)));
                let current = (!diverted).then_some(gw.view.version);
                let versions = [current, staged.map(|s| s.version)];
                let versions = versions.into_iter().flatten();
                if matches!(staged, Some(s) if !s.usable(b)) {
                    (false, false)
                } else if versions.clone().any(|v| self.fleet.moves(v, h, b)) {
                    (true, false)
                } else {
                    let loss = versions.into_iter().any(|v| self.fleet.loss_moves(v, h, b));
                    (loss, loss)
                }
            }
        };
        if share {
            self.conns[c as usize].shared = PENDING;
            if presync && !walk && self.sc.sync.presync_at_once {
                self.send(g, vec![(c, true)]);
            } else {
                self.gws[g].pending.push((c, presync));
            }
        }
    }
}
