# shellcheck shell=bash
# Sourced by tests/install/run.sh once version N is installed in the Debian root (after the
# CLI's forced downgrade), with the vault of `coffer init` and its swtpm still there: the
# INSTALLED app updates itself N -> N+1 as a user would, twice:
#   online     from an HTTPS endpoint on 127.0.0.1 (a test CA; the packages are the ones
#              run.sh built and signed with its throw-away key), then "Install and restart";
#   from file  the CLI puts N back (a forced downgrade), and the app installs the N+1 package
#              through "Install update from file…", then restarts.
# The app installs with `pkexec /usr/bin/coffer self-update --file … --signature …` (src-tauri/
# src/updates/install.rs), so the root gets a system D-Bus and polkitd, and a polkit rule,
# in the test root only, lets the test user run exactly that program without a password (no
# one is there to type it). After each restart: the process the app restarted into is the
# N+1 program and shows its window, dpkg and `coffer --version` say N+1, updates.log has the
# entry, and (a fresh app, over WebDriver) the vault unlocks with the same PIN, every secret
# reads as before, and the app refuses N as not newer than the running N+1. The CLI then reads
# every version of every secret byte for byte (vault_contents).
# The app is driven over WebDriver from the host (tests/install/app-update.mjs) through the
# host's tauri-driver, copied in, and Debian's WebKitWebDriver in the root: a chroot shares
# the host's loopback.
# Uses run.sh's CHROOT, WORK, ROOT, VERSION, NEWER, DEB, NEWER_DEB, PORT, DISPLAY_NUM, CONTENTS
# and its helpers (log, fail, in_root, as_user, vault_contents, free_port_pair).

log "the installed app updates itself to $NEWER: online, then from a file"
APP_UPDATE_START=$SECONDS
TAURI_DRIVER="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")"
# CI's e2e stage installed it already; alone, this installs it as tests/e2e/run.sh does.
[ -x "$TAURI_DRIVER" ] || cargo install tauri-driver --locked >"$WORK/tauri-driver-install.log" 2>&1 \
    || { tail -20 "$WORK/tauri-driver-install.log"; fail "tauri-driver did not install: the app cannot be driven"; }
[ -d "$ROOT/tests/e2e/node_modules/webdriverio" ] \
    || (cd "$ROOT/tests/e2e" && npm ci --no-audit --no-fund --loglevel=error) \
    || fail "the e2e suite's npm packages (webdriverio) did not install"
install -m 0755 "$TAURI_DRIVER" "$CHROOT/usr/local/bin/tauri-driver"

# The system bus and polkitd that pkexec asks; both end with the root's other processes.
in_root install -d -m 0755 /run/dbus
in_root dbus-uuidgen --ensure
in_root dbus-daemon --system --fork >/dev/null || fail "the root's system D-Bus did not start"
# TEST ROOT ONLY, never in the package: lets the test user run /usr/bin/coffer (and nothing
# else) through pkexec without the administrator's password, as if an admin had typed it.
cat >"$CHROOT/etc/polkit-1/rules.d/49-coffer-install-test.rules" <<'RULE'
// Coffer's install test only: the test user may run /usr/bin/coffer as root via pkexec.
polkit.addRule(function (action, subject) {
    if (action.id == "org.freedesktop.policykit.exec" && subject.user == "tester" &&
        action.lookup("program") == "/usr/bin/coffer") {
        return polkit.Result.YES;
    }
});
RULE
in_root /usr/lib/polkit-1/polkitd --no-debug >"$WORK/polkitd.log" 2>&1 &
pkexec_ready=""
for _ in $(seq 50); do
    if as_user pkexec --disable-internal-agent /usr/bin/coffer --version </dev/null >/dev/null 2>&1; then pkexec_ready=1; break; fi
    sleep 0.2
done
[ -n "$pkexec_ready" ] || { cat "$WORK/polkitd.log"; fail "pkexec cannot run coffer as root in the root (polkitd, rule)"; }
# The rule is that narrow: anything else is still refused.
! as_user pkexec --disable-internal-agent /usr/bin/id </dev/null >/dev/null 2>&1 || fail "the test's polkit rule lets the test user run more than coffer"

# tauri-driver in the root, with the environment the app inherits: the CLI's vault and swtpm.
DRIVER_PORT="$(free_port_pair)"
as_user env DISPLAY=":$DISPLAY_NUM" NO_AT_BRIDGE=1 COFFER_TCTI="swtpm:host=127.0.0.1,port=$PORT" \
    /usr/local/bin/tauri-driver --port "$DRIVER_PORT" --native-port "$((DRIVER_PORT + 1))" \
    --native-driver /usr/bin/WebKitWebDriver >"$WORK/tauri-driver.log" 2>&1 &
for _ in $(seq 100); do
    python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $DRIVER_PORT)))" && break
    sleep 0.1
done

# What the app must read: every secret's current value, as the CLI wrote them.
as_user sh -c 'umask 077; mkdir -p /home/tester/update-ca'
python3 - "$WORK/app-secrets.json" <<'PY'
import json, sys
json.dump({
    "install/check": "value-from-the-install-test",
    "db/url": "postgres://app:second@127.0.0.1/app",
    "tls/key": "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n",
    "api/token": "sk_live_4f9a",
}, open(sys.argv[1], "w"))
PY
SHOTS="$WORK/app-update-shots"
app_update() { # $1: phase of app-update.mjs
    (cd "$ROOT/tests/e2e" && E2E_APP=/usr/bin/coffer-app E2E_DRIVER_PORT="$DRIVER_PORT" E2E_SCREENSHOTS="$SHOTS" \
        UPDATE_PIN_FILE="$CHROOT/home/tester/pin" UPDATE_SECRETS_FILE="$WORK/app-secrets.json" \
        UPDATE_FROM="$VERSION" UPDATE_TO="$NEWER" UPDATE_RELEASE_DIR="$WORK/newer" \
        UPDATE_CA_DIR="$CHROOT/home/tester/update-ca" UPDATE_CA_DIR_IN_ROOT=/home/tester/update-ca \
        UPDATE_BUNDLE="/tmp/$NEWER_NAME" UPDATE_OLDER_BUNDLE="/tmp/$(basename "$DEB")" \
        timeout 300 node "$ROOT/tests/install/app-update.mjs" "$1") \
        || { tail -20 "$WORK/tauri-driver.log"; fail "the installed app's update ($1) failed; screenshots in $SHOTS"; }
}

# The app restarts into a new process of the installed program: find it, see its window, end it
# (the next WebDriver session starts the app afresh).
restarted_app() {
    local proc pid="" window=""
    for _ in $(seq 120); do
        for proc in /proc/[0-9]*; do
            [ "$(readlink "$proc/root" 2>/dev/null)" = "$CHROOT" ] || continue
            [ "$(readlink "$proc/exe" 2>/dev/null)" = "$CHROOT/usr/bin/coffer-app" ] && pid="${proc#/proc/}" && break
        done
        [ -n "$pid" ] && break
        sleep 0.5
    done
    [ -n "$pid" ] || fail "the app did not restart into the installed /usr/bin/coffer-app within 60 s"
    for _ in $(seq 120); do
        window="$(as_user env DISPLAY=":$DISPLAY_NUM" xwininfo -root -tree 2>/dev/null |
            sed -n 's/^ *\(0x[0-9a-f]*\) "Coffer": .*/\1/p' | head -1)"
        [ -n "$window" ] && break
        kill -0 "$pid" 2>/dev/null || fail "the restarted app exited before showing its window"
        sleep 0.5
    done
    [ -n "$window" ] || fail "the restarted app showed no window within 60 s"
    echo "   the app restarted as process $pid of the new /usr/bin/coffer-app and shows its window"
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
}

updated_by_app() { # $1: how
    [ "$(in_root dpkg-query -W -f='${Version}' coffer)" = "$NEWER" ] || fail "$1: the app did not install $NEWER"
    [ "$(as_user coffer --version)" = "coffer $NEWER" ] || fail "$1: coffer --version is not $NEWER"
    python3 - "$CHROOT/var/log/coffer/updates.log" "$LOGGED" "$VERSION" "$NEWER" <<'PY' \
        || fail "$1: the app's install is not in /var/log/coffer/updates.log"
import json, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
assert len(lines) == 1, f"expected one new entry, found {len(lines)}"
entry = json.loads(lines[0])
assert (entry["from"], entry["to"], entry["downgrade"]) == (sys.argv[3], sys.argv[4], False), entry
PY
    restarted_app
    app_update after
    [ "$(vault_contents)" = "$CONTENTS" ] || fail "$1: after the app's update the vault does not read as before"
    echo "   $1: the app installed $NEWER, restarted into it, and every secret reads as before"
}

[ "$(as_user coffer --version)" = "coffer $VERSION" ] || fail "the app's update must start from $VERSION"
LOGGED="$(wc -l <"$CHROOT/var/log/coffer/updates.log")"
app_update online
updated_by_app "online"
mkdir -p "${E2E_SCREENSHOTS:-$ROOT/docs/screenshots}"
cp "$SHOTS/update-installed.png" "${E2E_SCREENSHOTS:-$ROOT/docs/screenshots}/update-installed.png"

# Back to N with the CLI, then the same from a file.
in_root coffer self-update --allow-downgrade --file "/tmp/$(basename "$DEB")" >/dev/null 2>&1 \
    || fail "self-update --allow-downgrade did not bring back $VERSION for the app's update from a file"
LOGGED="$(wc -l <"$CHROOT/var/log/coffer/updates.log")"
app_update file
updated_by_app "from a file"
echo "   the installed app's two updates took $((SECONDS - APP_UPDATE_START)) s"
