//! The web view may call exactly Coffer's own commands. Three lists must agree for that:
//! the handlers the app registers, the commands its build script declares (which makes
//! one permission each), and the permission set the main window's capability grants.
//! A command added to one list and forgotten in another either cannot be called or is
//! callable without being declared; this test names which.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/");
    std::fs::read_to_string(format!("{full}{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text between `start` and the next `end` after it.
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not found"))
        + start.len();
    let len = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("{end:?} not found"));
    &text[from..from + len]
}

fn quoted(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn registered_declared_and_granted_commands_are_the_same() {
    let lib = read("src/lib.rs");
    let registered: BTreeSet<String> = section(&lib, "generate_handler![", "]")
        .split(',')
        .filter_map(|path| path.trim().rsplit("::").next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    let build = read("build.rs");
    let declared = quoted(section(&build, "const COMMANDS: &[&str] = &[", "];"));
    let permissions = read("permissions/coffer.toml");
    let granted: BTreeSet<String> = quoted(section(&permissions, "permissions = [", "]"))
        .into_iter()
        .map(|p| {
            p.strip_prefix("allow-")
                .unwrap_or_else(|| panic!("{p} is not an allow- permission"))
                .replace('-', "_")
        })
        .collect();
    assert!(
        registered.len() > 30,
        "parsed too few handlers: {registered:?}"
    );
    assert_eq!(
        registered, declared,
        "src/lib.rs handlers vs build.rs COMMANDS"
    );
    assert_eq!(
        declared, granted,
        "build.rs COMMANDS vs permissions/coffer.toml"
    );
}

#[test]
fn the_main_window_gets_events_and_coffer_commands_only() {
    let capability: serde_json::Value =
        serde_json::from_str(&read("capabilities/default.json")).expect("capability JSON");
    let permissions: BTreeSet<&str> = capability["permissions"]
        .as_array()
        .expect("a permissions list")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert_eq!(
        permissions,
        BTreeSet::from([
            "core:event:allow-listen",
            "core:event:allow-unlisten",
            "allow-coffer-commands"
        ])
    );
}
