#!/usr/bin/env bash
# Builds Coffer's Linux packages, a .deb and an .rpm, through Tauri's bundler. Each carries
# the desktop app, the `coffer` CLI (and `coffer-tpm`, which `coffer` execs, in
# /usr/libexec/coffer), the man page, bash/zsh/fish completions, a desktop entry and icons,
# systemd user units for the agent and the daemon (disabled), the public key that
# `coffer self-update` checks bundles against, and a post-install note on the `tss` group.
#
# Usage: packaging/build.sh [--debug] [--out DIR] [--update-pubkey FILE] [--version V]
#   (default)              a release build (cargo --release; what the README's Releasing uses)
#   --debug                package the debug build that tests/e2e/run.sh makes (CI's install
#                          test); binaries are stripped of debug info on the way in
#   --out DIR              where the packages go (default: $CARGO_TARGET_DIR/packages)
#   --update-pubkey FILE   a public key from `tauri signer generate` (its .pub file) to put
#                          in the packages instead of the one in src-tauri/tauri.conf.json
#                          (tests use a throw-away key)
#   --version V            build version V from these same sources: a copy of them in
#                          $CARGO_TARGET_DIR/source-V with the workspace and app version set
#                          to V, built into the same target dir (only Coffer's own crates
#                          recompile). The install test's genuine N+1: `coffer --version` and
#                          the app say V
# With TAURI_SIGNING_PRIVATE_KEY_PATH (and TAURI_SIGNING_PRIVATE_KEY_PASSWORD) set, each
# package is signed (FILE.sig) and latest.json, the update manifest, is written beside them.
#
# AppImage is not built: Tauri's AppImage bundler downloads linuxdeploy and the AppImage
# runtime from outside the package registries, and no registry package provides them.
# Nothing here downloads anything but registry packages (apt, npm, crates.io).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE=release
OUT=""
PUBKEY_FILE=""
PACKAGE_VERSION=""
while (($#)); do
    case "$1" in
        --debug) PROFILE=debug ;;
        --out) OUT="$2"; shift ;;
        --update-pubkey) PUBKEY_FILE="$2"; shift ;;
        --version) PACKAGE_VERSION="$2"; shift ;;
        *) echo "unknown option: $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
    shift
done

cd "$ROOT"
source packaging/debian-deps.sh
coffer_install_packages "${COFFER_BUILD_PACKAGES[@]}" "${COFFER_APP_PACKAGES[@]}" "${COFFER_PACKAGING_PACKAGES[@]}"
coffer_require_cargo

TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-$ROOT/target}")"
# Named explicitly so that a build from the versioned copy below uses this target dir too.
export CARGO_TARGET_DIR="$TARGET_DIR"
OUT="${OUT:-$TARGET_DIR/packages}"
TAURI="$ROOT/ui/node_modules/.bin/tauri"
[ -x "$TAURI" ] || coffer_build_ui
[ -f "$ROOT/ui/dist/index.html" ] || coffer_build_ui

STAGE="$(mktemp -d -t coffer-package-XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT

# `coffer self-update` compares a package's version with the CLI's own (Cargo's), so the
# two must be the same number.
APP_VERSION="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' src-tauri/tauri.conf.json)"
CARGO_VERSION="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
if [ "$APP_VERSION" != "$CARGO_VERSION" ]; then
    echo "src-tauri/tauri.conf.json says version $APP_VERSION but Cargo.toml says $CARGO_VERSION; make them equal" >&2
    exit 1
fi

# The update public key: the committed one, or the one given.
if [ -n "$PUBKEY_FILE" ]; then
    PUBKEY="$(tr -d '\n' <"$PUBKEY_FILE")"
else
    PUBKEY="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["plugins"]["updater"]["pubkey"])' src-tauri/tauri.conf.json)"
fi
if [ -z "$PUBKEY" ] || ! printf '%s' "$PUBKEY" | base64 -d 2>/dev/null | grep -q "minisign public key"; then
    echo "the update public key is missing or not a 'tauri signer generate' public key" >&2
    exit 1
fi
printf '{"plugins":{"updater":{"pubkey":"%s"}}}\n' "$PUBKEY" >"$STAGE/pubkey.json"

# Another version is built from a copy of these sources that says so: Cargo.toml's workspace
# version (which every crate, `coffer --version` and the update check read) and the app's.
# The copy keeps one path per version, so a second run reuses what the first compiled.
SOURCE="$ROOT"
LOCKED=(--locked)
BUILD_CONFIG="$STAGE/pubkey.json"
if [ -n "$PACKAGE_VERSION" ] && [ "$PACKAGE_VERSION" != "$APP_VERSION" ]; then
    python3 -c 'import re,sys; sys.exit(0 if re.fullmatch(r"\d+\.\d+\.\d+", sys.argv[1]) else 1)' "$PACKAGE_VERSION" \
        || { echo "--version takes a version like 1.2.3, not $PACKAGE_VERSION" >&2; exit 2; }
    SOURCE="$TARGET_DIR/source-$PACKAGE_VERSION"
    echo "== copying the sources to $SOURCE as version $PACKAGE_VERSION"
    rm -rf "$SOURCE"
    mkdir -p "$SOURCE"
    tar -C "$ROOT" --exclude=./target --exclude=./.git --exclude=node_modules --exclude=./docs \
        --exclude=./fuzz/target -cf - . | tar -C "$SOURCE" -xf -
    sed -i "/^\[workspace.package\]/,/^\[/s/^version = \".*\"/version = \"$PACKAGE_VERSION\"/" "$SOURCE/Cargo.toml"
    # The lock file names the workspace crates' versions; cargo rewrites those entries
    # (nothing else: --offline, no registry is asked).
    LOCKED=(--offline)
    python3 - "$SOURCE/src-tauri/tauri.conf.json" "$PACKAGE_VERSION" "$STAGE/pubkey.json" "$STAGE/build-config.json" <<'PY'
import json, sys
conf_path, version, pubkey_path, out_path = sys.argv[1:]
conf = json.load(open(conf_path))
conf["version"] = version
json.dump(conf, open(conf_path, "w"), indent=2)
# ui/dist is copied; the copy has no node_modules to rebuild it with.
extra = json.load(open(pubkey_path))
extra["build"] = {"beforeBuildCommand": None}
json.dump(extra, open(out_path, "w"))
PY
    BUILD_CONFIG="$STAGE/build-config.json"
fi

# Building another version replaces the programs in $TARGET_DIR/$PROFILE; keep this version's
# to put back once staged, so later steps (tests/e2e/run.sh --no-build) still find them.
PROGRAMS=(coffer coffer-tpm coffer-app)
if [ "$SOURCE" != "$ROOT" ]; then
    mkdir -p "$STAGE/previous"
    for program in "${PROGRAMS[@]}"; do
        if [ -f "$TARGET_DIR/$PROFILE/$program" ]; then cp -p "$TARGET_DIR/$PROFILE/$program" "$STAGE/previous/"; fi
    done
fi

echo "== building the CLI and the app ($PROFILE, version ${PACKAGE_VERSION:-$APP_VERSION})"
START=$SECONDS
if [ "$PROFILE" = release ]; then
    (cd "$SOURCE" && cargo build --release "${LOCKED[@]}" -p coffer-cli)
    (cd "$SOURCE/src-tauri" && "$TAURI" build --no-bundle --ci --config "$BUILD_CONFIG")
else
    # No-ops when tests/run-all.sh's workspace build and tests/e2e/run.sh made these
    # already (the whole workspace, so that features unify as they did there).
    (cd "$SOURCE" && cargo build --workspace "${LOCKED[@]}")
    if [ "$SOURCE" = "$ROOT" ]; then
        (cd src-tauri && "$TAURI" build --debug --no-bundle --ci)
    else
        (cd "$SOURCE/src-tauri" && "$TAURI" build --debug --no-bundle --ci --config "$BUILD_CONFIG")
    fi
fi
echo "   built in $((SECONDS - START)) s"
BUILT_VERSION="$("$TARGET_DIR/$PROFILE/coffer" --version)"
[ "$BUILT_VERSION" = "coffer ${PACKAGE_VERSION:-$APP_VERSION}" ] \
    || { echo "the built coffer says \"$BUILT_VERSION\", not version ${PACKAGE_VERSION:-$APP_VERSION}" >&2; exit 1; }

echo "== staging the files the packages carry"
START=$SECONDS
BIN="$TARGET_DIR/$PROFILE"
FILES="$STAGE/files"
mkdir -p "$FILES" "$STAGE/target/$PROFILE"
# The bundler takes the app from <target>/<profile>/; give it a stripped copy there.
strip --strip-unneeded -o "$STAGE/target/$PROFILE/coffer-app" "$BIN/coffer-app"
strip --strip-unneeded -o "$FILES/coffer" "$BIN/coffer"
strip --strip-unneeded -o "$FILES/coffer-tpm" "$BIN/coffer-tpm"
"$FILES/coffer" man | gzip -9n >"$FILES/coffer.1.gz"
for shell in bash zsh fish; do
    "$FILES/coffer" completions "$shell" >"$FILES/completion.$shell"
    [ -s "$FILES/completion.$shell" ] || { echo "coffer completions $shell printed nothing" >&2; exit 1; }
done
cp packaging/linux/coffer-agent.service packaging/linux/coffer-daemon.service packaging/linux/copyright \
    packaging/linux/README.Debian "$FILES/"
gzip -9n <packaging/linux/coffer-app.1 >"$FILES/coffer-app.1.gz"
printf '%s\n' "$PUBKEY" >"$FILES/update-key.pub"
MAINTAINER="Coffer maintainers <maintainers@coffer.invalid>"
VERSION="${PACKAGE_VERSION:-$APP_VERSION}"
cat >"$STAGE/changelog" <<EOF
coffer ($VERSION) stable; urgency=medium

  * Coffer $VERSION; the project's history is its git log.

 -- $MAINTAINER  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
EOF
gzip -9n <"$STAGE/changelog" >"$FILES/changelog.gz"

# The .deb's library dependencies, as Debian computes them (dpkg-shlibdeps), plus the TPM
# transports libtss2 opens at run time: the kernel's device and swtpm.
mkdir -p "$STAGE/shlibs/debian"
printf 'Source: coffer\n\nPackage: coffer\nArchitecture: any\n' >"$STAGE/shlibs/debian/control"
SHLIBS="$(cd "$STAGE/shlibs" && dpkg-shlibdeps -O -e"$FILES/coffer" -e"$FILES/coffer-tpm" \
    -e"$STAGE/target/$PROFILE/coffer-app" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$SHLIBS" ] || { echo "dpkg-shlibdeps found no dependencies" >&2; exit 1; }
DEB_DEPENDS="$(printf '%s, libtss2-tcti-device0, libtss2-tcti-swtpm0' "$SHLIBS" |
    python3 -c 'import json,sys; print(json.dumps([d.strip() for d in sys.stdin.read().split(",")]))')"

# Paths the packages install, mapped to the staged files.
files_json() {
    cat <<EOF
{
  "/usr/bin/coffer": "$FILES/coffer",
  "/usr/libexec/coffer/coffer-tpm": "$FILES/coffer-tpm",
  "/usr/share/man/man1/coffer.1.gz": "$FILES/coffer.1.gz",
  "/usr/share/bash-completion/completions/coffer": "$FILES/completion.bash",
  "/usr/share/zsh/vendor-completions/_coffer": "$FILES/completion.zsh",
  "/usr/share/fish/vendor_completions.d/coffer.fish": "$FILES/completion.fish",
  "/usr/lib/systemd/user/coffer-agent.service": "$FILES/coffer-agent.service",
  "/usr/lib/systemd/user/coffer-daemon.service": "$FILES/coffer-daemon.service",
  "/usr/share/coffer/update-key.pub": "$FILES/update-key.pub",
  "/usr/share/doc/coffer/copyright": "$FILES/copyright",
  "/usr/share/doc/coffer/changelog.gz": "$FILES/changelog.gz",
  "/usr/share/doc/coffer/README.Debian": "$FILES/README.Debian",
  "/usr/share/man/man1/coffer-app.1.gz": "$FILES/coffer-app.1.gz"
}
EOF
}
cat >"$STAGE/bundle.json" <<EOF
{
  "version": "$VERSION",
  "plugins": { "updater": { "pubkey": "$PUBKEY" } },
  "bundle": {
    "active": true,
    "targets": ["deb", "rpm"],
    "publisher": "$MAINTAINER",
    "copyright": "The Coffer authors",
    "license": "Apache-2.0",
    "category": "Utility",
    "shortDescription": "Local vault for secrets with keys sealed in the TPM",
    "longDescription": "Coffer keeps secrets (passwords, API keys, certificates) in a local\nvault whose master keys are sealed in the TPM. It has a desktop app and\nthe coffer command-line tool, versions and labels like AWS Secrets\nManager, envelope encryption like AWS KMS, scheduled rotation and a\ntamper-evident audit log.",
    "linux": {
      "deb": {
        "section": "utils",
        "priority": "optional",
        "depends": $DEB_DEPENDS,
        "recommends": ["swtpm"],
        "postInstallScript": "$ROOT/packaging/linux/post-install.sh",
        "files": $(files_json)
      },
      "rpm": {
        "depends": ["tpm2-tss", "openssl-libs"],
        "recommends": ["swtpm"],
        "postInstallScript": "$ROOT/packaging/linux/post-install.sh",
        "files": $(files_json)
      }
    }
  }
}
EOF
echo "   staged in $((SECONDS - START)) s"
if [ "$SOURCE" != "$ROOT" ]; then
    # cargo hard-links these to its own copies: replace the links, never write through them.
    for program in "${PROGRAMS[@]}"; do
        if [ -f "$STAGE/previous/$program" ]; then
            cp -p --remove-destination "$STAGE/previous/$program" "$TARGET_DIR/$PROFILE/$program"
        fi
    done
fi

echo "== bundling .deb and .rpm"
START=$SECONDS
debug_flag=()
[ "$PROFILE" = debug ] && debug_flag=(--debug)
(cd src-tauri && CARGO_TARGET_DIR="$STAGE/target" "$TAURI" bundle "${debug_flag[@]}" --ci \
    --bundles deb,rpm --config "$STAGE/bundle.json")
mkdir -p "$OUT"
rm -f "$OUT"/*.deb "$OUT"/*.rpm "$OUT"/*.sig "$OUT"/latest.json
cp "$STAGE/target/$PROFILE/bundle/deb/"*.deb "$STAGE/target/$PROFILE/bundle/rpm/"*.rpm "$OUT/"
echo "   bundled in $((SECONDS - START)) s"

if [ -n "${TAURI_SIGNING_PRIVATE_KEY_PATH:-}" ]; then
    echo "== signing the packages and writing latest.json"
    for package in "$OUT"/*.deb "$OUT"/*.rpm; do
        "$TAURI" signer sign "$package" >/dev/null
    done
    python3 packaging/latest_json.py "$VERSION" "$OUT" >"$OUT/latest.json"
fi
ls -l "$OUT"
