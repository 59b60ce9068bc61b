//! Any bytes as a received sync message: decoding returns a message or a
//! rejection and never panics. The first input byte chooses the mode: odd,
//! the rest gets the current key's id and a valid tag first (as if a peer
//! holding the key sent it), so the checks past the tag are reached too;
//! an accepted message then encodes to exactly the bytes it came from.
//! What is accepted is also fed to a replay table and a held store.
#![no_main]

use dnlb_sync::replay::Senders;
use dnlb_sync::store::Store;
use dnlb_sync::{Body, Key, Keys, Message, MAX_MESSAGE_LEN};
use libfuzzer_sys::fuzz_target;

const TAG: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = Keys::new(
        Key::new(&[0x42; 32]).unwrap(),
        Some(Key::new(&[0x43; 32]).unwrap()),
    );
    let mut b = rest.to_vec();
    let retagged = mode & 1 == 1 && b.len() >= 12 + TAG;
    if retagged {
        b[8..12].copy_from_slice(&keys.current().id().to_be_bytes());
        let n = b.len() - TAG;
        let tag = keys.current().tag(&b[..n]);
        b[n..].copy_from_slice(&tag);
    }
    let Ok(m) = Message::decode(&b, &keys) else {
        return;
    };
    assert!(b.len() <= MAX_MESSAGE_LEN);
    if retagged {
        assert_eq!(m.encode(keys.current()).unwrap(), b);
    }
    let mut senders = Senders::default();
    let h = m.header;
    if senders.accept(h.sender, h.epoch, h.sequence).is_ok() {
        assert!(senders.accept(h.sender, h.epoch, h.sequence).is_err());
    }
    let mut store = Store::new(16);
    let now = h.generation;
    for e in m.body.entries() {
        store.insert(*e, now);
    }
    if let Body::Withdraw(entries) = &m.body {
        for e in entries {
            store.withdraw(e);
        }
    }
    store.expire(now.saturating_add(u64::from(u32::MAX)));
    assert!(store.is_empty());
});
