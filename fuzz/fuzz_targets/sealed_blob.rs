//! The sealed-KEK blob stored in the vault file: decoding never panics, and whatever
//! decodes encodes back to the same bytes.
#![no_main]

use coffer_core::tpm::SealedKek;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sealed) = SealedKek::from_bytes(data) {
        assert_eq!(sealed.to_bytes(), data);
    }
});
