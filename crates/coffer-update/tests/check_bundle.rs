//! `check_bundle` on real packages: .deb files made by `dpkg-deb`, signed with throw-away
//! minisign keys in the format `tauri signer sign` writes.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use coffer_update::{check_bundle, BundleRefusal, Format, SignatureRefusal, UpdateKey};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn key_pair() -> (minisign::KeyPair, UpdateKey) {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let key = UpdateKey::decode(&b64(&pair.pk.to_box().unwrap().into_string())).unwrap();
    (pair, key)
}

fn sign(pair: &minisign::KeyPair, data: &[u8]) -> String {
    let signature = minisign::sign(
        Some(&pair.pk),
        &pair.sk,
        data,
        Some("timestamp:0\tfile:bundle"),
        Some("signature from tauri secret key"),
    )
    .unwrap();
    b64(&signature.into_string())
}

fn deb(dir: &Path, name: &str, version: &str) -> Vec<u8> {
    let tree = dir.join(format!("tree-{name}-{version}"));
    std::fs::create_dir_all(tree.join("DEBIAN")).unwrap();
    std::fs::write(
        tree.join("DEBIAN/control"),
        format!("Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <test@coffer.invalid>\nDescription: test\n"),
    )
    .unwrap();
    let file = dir.join(format!("{name}_{version}.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&tree)
        .arg(&file)
        .output()
        .expect("dpkg-deb (Debian package dpkg)");
    assert!(out.status.success(), "{out:?}");
    std::fs::read(file).unwrap()
}

#[test]
fn a_signed_coffer_deb_is_read_from_a_private_copy_of_the_verified_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, key) = key_pair();
    let bytes = deb(dir.path(), "coffer", "1.2.3");
    let bundle = check_bundle(&key, &bytes, &sign(&pair, &bytes)).unwrap();
    assert_eq!(bundle.package.format, Format::Deb);
    assert_eq!(bundle.package.version.to_string(), "1.2.3");
    assert_eq!(std::fs::read(bundle.copy()).unwrap(), bytes);
    assert!(bundle.copy().starts_with(bundle.dir()));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(bundle.dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the copy's folder is private");
    let copy_dir = bundle.dir().to_owned();
    drop(bundle);
    assert!(
        !copy_dir.exists(),
        "the private copy goes when the bundle is dropped"
    );
}

#[test]
fn tampered_foreign_other_packages_and_non_packages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pair, key) = key_pair();
    let bytes = deb(dir.path(), "coffer", "1.2.3");
    let signature = sign(&pair, &bytes);

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    assert!(matches!(
        check_bundle(&key, &flipped, &signature),
        Err(BundleRefusal::Signature(SignatureRefusal::Tampered))
    ));

    let (other, _) = key_pair();
    assert!(matches!(
        check_bundle(&key, &bytes, &sign(&other, &bytes)),
        Err(BundleRefusal::Signature(SignatureRefusal::OtherKey))
    ));

    let not_coffer = deb(dir.path(), "not-coffer", "9.0.0");
    match check_bundle(&key, &not_coffer, &sign(&pair, &not_coffer)) {
        Err(BundleRefusal::OtherPackage(name)) => assert_eq!(name, "not-coffer"),
        other => panic!("expected OtherPackage, got {:?}", other.err()),
    }

    let text = b"just text".to_vec();
    assert!(matches!(
        check_bundle(&key, &text, &sign(&pair, &text)),
        Err(BundleRefusal::NotAPackage)
    ));
}
