//! `coffer://` references: never a panic, and what parses names a valid secret.
#![no_main]

use coffer_core::reference::SecretReference;
use coffer_core::SecretName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let looks = SecretReference::looks_like(text);
    if let Ok(reference) = SecretReference::parse(text) {
        assert!(looks, "{text:?} parsed but does not look like a reference");
        SecretName::parse(reference.name.as_str()).expect("the name is valid");
        if let Some(field) = &reference.field {
            assert!(!field.is_empty());
        }
    }
});
