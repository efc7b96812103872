"""Writes latest.json, the update manifest the app's updater reads, for the signed
packages in a directory: one platform entry per package kind, each with the package's
signature (the .sig `tauri signer sign` wrote) and its download URL.

Usage: python3 packaging/latest_json.py VERSION DIR  (COFFER_RELEASE_URL: the URL of the
folder the packages will be published in; without it the URLs are the bare file names,
which a release must fill in before publishing).
"""
import datetime
import json
import os
import pathlib
import sys

PLATFORMS = {".deb": "linux-x86_64-deb", ".rpm": "linux-x86_64-rpm"}


def main() -> None:
    version, folder = sys.argv[1], pathlib.Path(sys.argv[2])
    base = os.environ.get("COFFER_RELEASE_URL", "").rstrip("/")
    platforms = {}
    for package in sorted(folder.iterdir()):
        platform = PLATFORMS.get(package.suffix)
        if platform is None:
            continue
        signature = package.with_name(package.name + ".sig").read_text().strip()
        url = f"{base}/{package.name}" if base else package.name
        platforms[platform] = {"signature": signature, "url": url}
    if not platforms:
        sys.exit(f"no signed .deb or .rpm in {folder}")
    manifest = {
        "version": version,
        "notes": os.environ.get("COFFER_RELEASE_NOTES", f"Coffer {version}"),
        "pub_date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platforms": platforms,
    }
    json.dump(manifest, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
