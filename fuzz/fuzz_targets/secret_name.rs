//! Secret names, staging labels and key aliases: whatever parses prints back as itself.
#![no_main]

use coffer_core::{KeyAlias, SecretName, StagingLabel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(name) = SecretName::parse(text) {
        let again = SecretName::parse(name.as_str()).expect("a parsed name parses again");
        assert_eq!(again.as_str(), name.as_str());
        assert_eq!(name.to_string(), name.as_str());
    }
    if let Ok(label) = StagingLabel::parse(text) {
        assert_eq!(
            StagingLabel::parse(label.as_str()).unwrap().as_str(),
            label.as_str()
        );
    }
    if let Ok(alias) = KeyAlias::parse(text) {
        assert!(alias.as_str().starts_with("alias/"));
        assert_eq!(
            KeyAlias::parse(alias.as_str()).unwrap().as_str(),
            alias.as_str()
        );
    }
});
