#!/usr/bin/env bash
# Installs the Debian 12 packages Coffer needs to build and test, skipping what is
# already there. Sourced by the README's two commands and by CI; safe to run twice.
set -euo pipefail

COFFER_BUILD_PACKAGES=(build-essential pkg-config libtss2-dev)
COFFER_TPM_PACKAGES=(swtpm swtpm-tools tpm2-tools)

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
