//! Wrapped data keys and value ciphertexts as stored in the vault file: opening any bytes
//! fails cleanly unless they are an authentic blob for this key and context.
#![no_main]

use coffer_core::crypto::{aead, DataKey, Kek};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let kek = Kek::from_bytes([7u8; 32]);
    assert!(DataKey::unwrap(&kek, b"coffer.fuzz", data).is_err() || data.len() >= 28);
    let _ = aead::open(kek.expose(), b"coffer.fuzz", data);
    // A real blob opens, and any single flipped byte of it does not.
    let sealed = aead::seal(kek.expose(), b"coffer.fuzz", data);
    assert_eq!(
        aead::open(kek.expose(), b"coffer.fuzz", &sealed)
            .unwrap()
            .as_slice(),
        data
    );
    if !data.is_empty() {
        let mut flipped = sealed.clone();
        let at = usize::from(data[0]) % flipped.len();
        flipped[at] ^= 0x01;
        assert!(aead::open(kek.expose(), b"coffer.fuzz", &flipped).is_err());
    }
});
