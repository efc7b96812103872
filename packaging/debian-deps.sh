#!/usr/bin/env bash
# Installs the Debian 12 packages Coffer needs to build and test, skipping what is
# already there. Sourced by the README's two commands and by CI; safe to run twice.
set -euo pipefail

COFFER_BUILD_PACKAGES=(build-essential pkg-config libtss2-dev nodejs npm)
COFFER_TPM_PACKAGES=(swtpm swtpm-tools tpm2-tools)
# The desktop app (Tauri 2 on WebKitGTK).
COFFER_APP_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev)
# Only for tests: a real PostgreSQL for the rotator, a display and WebDriver for the app,
# iproute2 for the tests that put peers in network namespaces of their own; nftables to
# lose packets on the links between them; faketime (libfaketime) to move the coffer
# processes' clock a week on in tests/tests/team_week.rs.
COFFER_TEST_PACKAGES=(postgresql xvfb xauth webkit2gtk-driver xclip python3 util-linux dbus-daemon dbus-bin iproute2 nftables faketime)
# packaging/build.sh (strip, the manifest writer) and the install test (tests/install/run.sh:
# a clean Debian root, the package linter, a screenshot of the installed app's window).
COFFER_PACKAGING_PACKAGES=(binutils python3)
COFFER_INSTALL_TEST_PACKAGES=(debootstrap lintian imagemagick)

coffer_install_packages() {
    local missing=()
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    # The machine may already have a newer Node.js than Debian's; keep it.
    if command -v node >/dev/null && command -v npm >/dev/null; then
        local keep=()
        for package in "${missing[@]}"; do
            case "$package" in nodejs | npm) ;; *) keep+=("$package") ;; esac
        done
        missing=("${keep[@]}")
        [ "${#missing[@]}" -eq 0 ] && return 0
    fi
    echo "Installing Debian packages: ${missing[*]}" >&2
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null; then
            echo "These packages are missing and you are not root: ${missing[*]}" >&2
            echo "Install them with: apt-get install ${missing[*]}" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

coffer_require_cargo() {
    if ! command -v cargo >/dev/null; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "Rust is not installed: Coffer needs cargo and rustc 1.85 or newer (rustup.rs)." >&2
            return 1
        fi
    fi
}

# Builds the web UI the app embeds (tauri's build script needs ui/dist to exist).
coffer_build_ui() {
    (cd ui && npm install --no-audit --no-fund --loglevel=error && npm run build --silent)
}
