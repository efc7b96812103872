#!/usr/bin/env bash
# End-to-end tests of the Coffer desktop app, in the real app:
#   installs what is missing (Debian packages, npm packages, tauri-driver), builds the app
#   (debug, no bundle), starts Xvfb and tauri-driver on free ports, and runs the suite against
#   a fresh HOME in a temp dir (the app starts its own software TPM there).
# Usage: tests/e2e/run.sh [--bench] [--no-build]
#   --bench      also run the performance benchmark (tests/e2e/bench.mjs)
#   --no-build   reuse the app binary that is already built
# E2E_PATTERN='a|b' runs only the tests whose names match (those they depend on must match
# too). Screenshots go to docs/screenshots/ (E2E_SCREENSHOTS overrides). Everything listens on
# 127.0.0.1 only. Exit status is non-zero if any test fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E="$ROOT/tests/e2e"
BENCH=0
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --bench) BENCH=1 ;;
    --no-build) BUILD=0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '\n==> %s\n' "$*"; }

APT_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev
  xvfb xauth webkit2gtk-driver swtpm swtpm-tools libtss2-dev xclip dbus-daemon dbus-bin)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

log "installing npm packages"
# npm ci trips over @tauri-apps/cli's optional per-platform packages with some npm versions.
(cd "$ROOT/ui" && { npm ci --no-audit --no-fund --loglevel=silent || npm install --no-audit --no-fund --loglevel=error; })
(cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)

if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  log "installing tauri-driver"
  cargo install tauri-driver --locked
fi
TAURI_DRIVER="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")"
NATIVE_DRIVER="$(command -v WebKitWebDriver)"

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
APP_BIN="$TARGET_DIR/debug/coffer-app"
if ((BUILD)); then
  log "building the app (debug, no bundle)"
  (cd "$ROOT/src-tauri" && "$ROOT/ui/node_modules/.bin/tauri" build --debug --no-bundle --ci)
fi
[ -x "$APP_BIN" ] || { echo "the app binary is missing: $APP_BIN" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

WORK="$(mktemp -d -t coffer-e2e-XXXXXX)"
PIDS=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ] && [ -d "$WORK" ]; then
    echo "logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT INT TERM

# A private display.
DISPLAY_NUM=99
while [ -e "/tmp/.X11-unix/X$DISPLAY_NUM" ] || [ -e "/tmp/.X$DISPLAY_NUM-lock" ]; do DISPLAY_NUM=$((DISPLAY_NUM + 1)); done
Xvfb ":$DISPLAY_NUM" -screen 0 1440x900x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
export DISPLAY=":$DISPLAY_NUM"
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.1; done

# Two private D-Bus buses standing in for the session bus and the system bus, so that the
# suite can emit the screensaver's and logind's signals (screen lock, suspend) to the app
# without touching the machine's own buses.
start_bus() { # $1: name, $2: variable to set to the bus address
  local file="$WORK/$1-bus.address"
  dbus-daemon --config-file=/usr/share/dbus-1/session.conf --nofork --print-address=3 \
    3>"$file" >"$WORK/$1-bus.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do [ -s "$file" ] && break; sleep 0.1; done
  [ -s "$file" ] || { echo "the private $1 D-Bus bus did not start" >&2; exit 1; }
  printf -v "$2" '%s' "$(head -n1 "$file")"
}
start_bus session E2E_SESSION_BUS
start_bus system E2E_SYSTEM_BUS
export E2E_SESSION_BUS E2E_SYSTEM_BUS

run_suite() { # $1: name, $2...: command
  local name="$1"
  shift
  local home="$WORK/$name-home"
  mkdir -p "$home/.local/share" "$home/.config" "$home/runtime"
  chmod 700 "$home/runtime"
  local port native
  port="$(free_port)"
  native="$(free_port)"
  # The app inherits this environment from tauri-driver: a throwaway HOME, and no TPM
  # device or COFFER_TCTI, so the app starts its own software TPM under $home. The file
  # chooser answers from a file the specs write (test-only: see src-tauri/src/file_picker.rs).
  env -u COFFER_TCTI -u COFFER_VAULT \
    HOME="$home" XDG_DATA_HOME="$home/.local/share" XDG_CONFIG_HOME="$home/.config" \
    XDG_RUNTIME_DIR="$home/runtime" NO_AT_BRIDGE=1 COFFER_UPDATE_KEY_FILE="$home/update-key.pub" \
    DBUS_SESSION_BUS_ADDRESS="$E2E_SESSION_BUS" DBUS_SYSTEM_BUS_ADDRESS="$E2E_SYSTEM_BUS" \
    COFFER_TEST_FILE_PICKER="$home/file-picker-answer" \
    ${COFFER_E2E_ENV:-} \
    "$TAURI_DRIVER" --port "$port" --native-port "$native" --native-driver "$NATIVE_DRIVER" \
    >"$WORK/$name-driver.log" 2>&1 &
  local driver=$!
  PIDS+=("$driver")
  for _ in $(seq 100); do
    python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)))" && break
    sleep 0.1
  done
  local status=0
  E2E_APP="$APP_BIN" E2E_DRIVER_PORT="$port" E2E_HOME="$home" "$@" || status=$?
  kill "$driver" 2>/dev/null || true
  wait "$driver" 2>/dev/null || true
  return "$status"
}

export E2E_SCREENSHOTS="${E2E_SCREENSHOTS:-$ROOT/docs/screenshots}"
FAILED=0
log "running the end-to-end suite"
run_suite suite bash -c "cd '$E2E' && node --test --test-concurrency=1 --test-reporter=spec --test-timeout=600000 ${E2E_PATTERN:+--test-name-pattern=\"$E2E_PATTERN\"} specs/" || FAILED=1

if ((BENCH)); then
  log "running the benchmark"
  run_suite bench bash -c "cd '$E2E' && node bench.mjs" || FAILED=1
fi

echo
if ((FAILED)); then
  echo "E2E RESULT: FAIL (driver logs in $WORK)"
  exit 1
fi
echo "E2E RESULT: PASS (screenshots in $E2E_SCREENSHOTS)"
