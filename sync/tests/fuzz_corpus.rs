//! The fuzz target's seed corpus (`sync/fuzz/corpus/decode_message`) holds
//! valid messages: each seed's first byte is the target's mode, the rest a
//! message tagged with the target's key. Pins the seeds to the codec.

use std::path::Path;

use dnlb_sync::{Key, Keys, Message};

#[test]
fn seeds_decode() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_message");
    let keys = Keys::new(Key::new(&[0x42; 32]).unwrap(), None);
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        let (_, msg) = bytes.split_first().unwrap();
        let m = Message::decode(msg, &keys).unwrap();
        assert_eq!(m.encode(keys.current()).unwrap(), msg);
        n += 1;
    }
    assert!(n >= 6, "{n} seeds");
}
