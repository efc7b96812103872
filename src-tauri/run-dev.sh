#!/usr/bin/env bash
# Builds and launches the Coffer desktop app (debug build).
#   Installs missing Debian packages (WebKitGTK, swtpm…) and npm packages, builds the web UI
#   and the app, then runs it. Without a TPM device the app starts a software TPM itself and
#   shows a "Software TPM — not secure" badge.
# Usage: src-tauri/run-dev.sh [--no-build]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=1
[ "${1:-}" = "--no-build" ] && BUILD=0

APT_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev
  swtpm swtpm-tools libtss2-dev pkg-config)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ((BUILD)); then
  echo "==> installing npm packages"
  # npm ci trips over @tauri-apps/cli's optional per-platform packages with some npm versions.
  (cd "$ROOT/ui" && { npm ci --no-audit --no-fund --loglevel=silent || npm install --no-audit --no-fund --loglevel=error; })
  echo "==> building the app (debug)"
  (cd "$ROOT/src-tauri" && "$ROOT/ui/node_modules/.bin/tauri" build --debug --no-bundle --ci)
fi

APP="${CARGO_TARGET_DIR:-$ROOT/target}/debug/coffer-app"
[ -x "$APP" ] || { echo "the app was not built: $APP is missing" >&2; exit 1; }
echo "==> starting $APP"
exec "$APP"
