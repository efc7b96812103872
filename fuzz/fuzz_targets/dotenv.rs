//! `.env` files for `coffer run` / `coffer env`: never a panic; every variable parsed is a
//! name a shell accepts (anything else could turn an `export` line into a command); the
//! same text always parses the same way; and an error names the line.
#![no_main]

use std::path::Path;

use coffer_cli::dotenv::{is_variable_name, parse_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let path = Path::new("fuzz.env");
    match parse_text(text, path) {
        Ok(entries) => {
            let lines = text.lines().count();
            for entry in &entries {
                assert!(is_variable_name(&entry.key), "{:?}", entry.key);
                assert!((1..=lines).contains(&entry.line));
                assert!(!entry.value.contains('\n'));
            }
            let again = parse_text(text, path).expect("parsed once, parses again");
            assert_eq!(entries.len(), again.len());
            for (a, b) in entries.iter().zip(&again) {
                assert_eq!((&a.key, a.value.as_str()), (&b.key, b.value.as_str()));
            }
        }
        Err(failure) => assert!(
            failure.message.starts_with("fuzz.env:"),
            "{}",
            failure.message
        ),
    }
});
