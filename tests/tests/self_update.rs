//! `coffer self-update --file`: what it refuses, and what it accepts.
//!
//! Each test installs a copy of the real `coffer` binary into a temporary prefix
//! (`PREFIX/bin/coffer`, with the update public key in `PREFIX/share/coffer/`, as the
//! packages lay them out), makes real .deb files with `dpkg-deb` and signs them with a
//! throw-away minisign key, in the format `tauri signer sign` writes. Only `--check` runs
//! here: installing for real happens in the clean Debian root of tests/install/run.sh.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use coffer_system_tests::{coffer_bin, exit};
use tempfile::TempDir;

struct Prefix {
    dir: TempDir,
    key: minisign::KeyPair,
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

impl Prefix {
    /// A prefix whose `coffer` trusts a fresh key.
    fn new() -> Prefix {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("share/coffer")).unwrap();
        let coffer = dir.path().join("bin/coffer");
        std::fs::copy(coffer_bin(), &coffer).unwrap();
        std::fs::set_permissions(&coffer, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public = key.pk.to_box().unwrap().into_string();
        std::fs::write(
            dir.path().join("share/coffer/update-key.pub"),
            base64(&public),
        )
        .unwrap();
        Prefix { dir, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A .deb of package `name` at `version`, made by dpkg-deb.
    fn deb(&self, name: &str, version: &str) -> PathBuf {
        let tree = self.path(&format!("tree-{name}-{version}"));
        std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(tree.join("usr/share/doc/coffer")).unwrap();
        std::fs::write(tree.join("usr/share/doc/coffer/marker"), version).unwrap();
        std::fs::write(
            tree.join("DEBIAN/control"),
            format!(
                "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <test@coffer.invalid>\nDescription: test bundle\n"
            ),
        )
        .unwrap();
        let deb = self.path(&format!("{name}_{version}_all.deb"));
        let out = Command::new("dpkg-deb")
            .args(["--build", "--root-owner-group"])
            .arg(&tree)
            .arg(&deb)
            .output()
            .expect("dpkg-deb (Debian package dpkg)");
        assert!(out.status.success(), "{out:?}");
        deb
    }

    /// Signs `file` as `tauri signer sign` does, into FILE.sig.
    fn sign(&self, file: &Path) -> PathBuf {
        sign_with(&self.key, file)
    }

    fn update(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.path("bin/coffer"))
            .arg("self-update")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .output()
            .unwrap()
    }
}

fn sign_with(key: &minisign::KeyPair, file: &Path) -> PathBuf {
    let data = std::fs::read(file).unwrap();
    let signature = minisign::sign(
        Some(&key.pk),
        &key.sk,
        data.as_slice(),
        Some("timestamp:0\tfile:bundle"),
        Some("signature from tauri secret key"),
    )
    .unwrap();
    let mut path = file.as_os_str().to_owned();
    path.push(".sig");
    let path = PathBuf::from(path);
    std::fs::write(&path, base64(&signature.into_string())).unwrap();
    path
}

#[track_caller]
fn refused(out: &std::process::Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(
        stderr.contains("nothing was installed"),
        "a refusal must say nothing was installed: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[track_caller]
fn accepted(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_newer_bundle_signed_with_the_update_key_is_accepted() {
    let prefix = Prefix::new();
    let deb = prefix.deb("coffer", "99.0.0");
    prefix.sign(&deb);
    let said = accepted(&prefix.update(&["--check", "--file", arg(&deb)]));
    assert!(said.contains("Coffer 99.0.0"), "{said}");
    assert!(said.contains("signed with Coffer's update key"), "{said}");
    assert!(!said.contains("downgrade"), "{said}");

    // The signature may live elsewhere (another folder on the stick).
    let elsewhere = prefix.path("elsewhere.sig");
    let mut sig = deb.clone().into_os_string();
    sig.push(".sig");
    std::fs::rename(&sig, &elsewhere).unwrap();
    accepted(&prefix.update(&[
        "--check",
        "--file",
        arg(&deb),
        "--signature",
        arg(&elsewhere),
    ]));
}

#[test]
fn an_unsigned_bundle_is_refused() {
    let prefix = Prefix::new();
    let deb = prefix.deb("coffer", "99.0.0");
    refused(
        &prefix.update(&["--check", "--file", arg(&deb)]),
        exit::TAMPERED,
        "is unsigned",
    );
}

#[test]
fn a_bundle_signed_by_another_key_is_refused() {
    let prefix = Prefix::new();
    let deb = prefix.deb("coffer", "99.0.0");
    let other = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    sign_with(&other, &deb);
    refused(
        &prefix.update(&["--check", "--file", arg(&deb)]),
        exit::TAMPERED,
        "signed by another key",
    );
}

#[test]
fn a_bundle_with_one_flipped_byte_is_refused() {
    let prefix = Prefix::new();
    let deb = prefix.deb("coffer", "99.0.0");
    prefix.sign(&deb);
    let mut bytes = std::fs::read(&deb).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&deb, bytes).unwrap();
    refused(
        &prefix.update(&["--check", "--file", arg(&deb)]),
        exit::TAMPERED,
        "changed after it was signed",
    );
}

#[test]
fn an_older_or_equal_bundle_is_refused_unless_a_downgrade_is_asked_for() {
    let prefix = Prefix::new();
    let running = env!("CARGO_PKG_VERSION");
    for version in ["0.0.1", running] {
        let deb = prefix.deb("coffer", version);
        prefix.sign(&deb);
        refused(
            &prefix.update(&["--check", "--file", arg(&deb)]),
            exit::CONFLICT,
            "not newer than the running",
        );
        let said = accepted(&prefix.update(&["--check", "--allow-downgrade", "--file", arg(&deb)]));
        assert!(said.contains("a downgrade"), "{said}");
    }
}

#[test]
fn signed_files_that_are_not_a_coffer_package_are_refused() {
    let prefix = Prefix::new();
    let other = prefix.deb("not-coffer", "99.0.0");
    prefix.sign(&other);
    refused(
        &prefix.update(&["--check", "--file", arg(&other)]),
        exit::USAGE,
        "not coffer",
    );
    let text = prefix.path("notes.txt");
    std::fs::write(&text, "just text").unwrap();
    prefix.sign(&text);
    refused(
        &prefix.update(&["--check", "--file", arg(&text)]),
        exit::USAGE,
        "neither a .deb nor an .rpm",
    );
}

#[test]
fn bad_signature_files_and_missing_bundles_are_named() {
    let prefix = Prefix::new();
    let deb = prefix.deb("coffer", "99.0.0");
    let garbage = prefix.path("garbage.sig");
    std::fs::write(&garbage, "this is not a signature").unwrap();
    refused(
        &prefix.update(&["--check", "--file", arg(&deb), "--signature", arg(&garbage)]),
        exit::TAMPERED,
        "is not a signature",
    );
    let out = prefix.update(&["--check", "--file", arg(&prefix.path("missing.deb"))]);
    assert_eq!(out.status.code(), Some(exit::USAGE));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the bundle"));
}

#[test]
fn a_coffer_not_installed_from_a_package_has_no_key_and_says_so() {
    let prefix = Prefix::new();
    let deb = prefix.deb("coffer", "99.0.0");
    prefix.sign(&deb);
    std::fs::remove_file(prefix.path("share/coffer/update-key.pub")).unwrap();
    let out = prefix.update(&["--check", "--file", arg(&deb)]);
    assert_eq!(out.status.code(), Some(exit::FAILURE));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not installed from a package"),
        "{out:?}"
    );
    // A damaged key is not an empty trust list: still refused.
    std::fs::write(prefix.path("share/coffer/update-key.pub"), "damaged").unwrap();
    let out = prefix.update(&["--check", "--file", arg(&deb)]);
    assert_eq!(out.status.code(), Some(exit::FAILURE));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is damaged"),
        "{out:?}"
    );
}
