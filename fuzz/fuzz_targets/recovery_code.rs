//! Recovery codes as typed: any text is a code, a typo or malformed, never a panic.
#![no_main]

use coffer_core::crypto::recovery::RecoveryCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(code) = RecoveryCode::parse(text) {
        let shown = code.display();
        RecoveryCode::parse(&shown).expect("a code's display form parses");
    }
});
