//! `coffer inject` templates: never a panic; a template without `{{` comes out unchanged
//! and asks for nothing; every lookup is for something that looks like a `coffer://`
//! reference; each lookup's value appears in place of exactly one placeholder, so the
//! output is the input with references swapped, no more and no less.
#![no_main]

use coffer_cli::template::render;
use coffer_core::reference::SecretReference;
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

const VALUE: &str = "\u{1}";

fuzz_target!(|text: &str| {
    if text.contains(VALUE) {
        return;
    }
    let mut asked = Vec::new();
    let out = render(text, &mut |reference, line| {
        assert!(SecretReference::looks_like(reference), "{reference:?}");
        assert!(!reference.contains("}}"), "{reference:?}");
        assert!(line >= 1 && line <= text.lines().count().max(1));
        asked.push(reference.len());
        Ok(Zeroizing::new(VALUE.to_owned()))
    })
    .expect("the lookup never fails here");
    if !text.contains("{{") {
        assert_eq!(out.as_str(), text);
        assert!(asked.is_empty());
    }
    assert_eq!(out.matches(VALUE).count(), asked.len());
    // Each replaced placeholder was `{{`, optional spaces, the reference, spaces, `}}`.
    let removed: usize = asked.iter().map(|len| len + 4).sum();
    assert!(out.len() + removed <= text.len() + asked.len() * VALUE.len());
    // Everything else is the input's own text, in order: without the values, the output
    // is a subsequence of the input.
    let mut input = text.chars();
    for c in out.chars().filter(|c| !VALUE.contains(*c)) {
        assert!(input.any(|i| i == c), "{c:?} is not from the input");
    }
});
