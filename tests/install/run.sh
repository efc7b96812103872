#!/usr/bin/env bash
# Install test: Coffer's .deb in a clean Debian 12 root, as a user would get it.
#   1. builds the packages from the debug build CI already made (packaging/build.sh
#      --debug), signed with a throw-away update key made here, and lints the .deb;
#   2. makes a minimal Debian 12 root with debootstrap from the Debian mirror this
#      machine's apt sources name, and installs the .deb into it with apt-get;
#   3. in there, as an ordinary user: `coffer --version`, `man coffer`, `coffer init` +
#      create + get on a swtpm, and the app under Xvfb up to its first window (screenshot
#      in docs/screenshots/installed-app.png);
#   4. `coffer self-update` refuses an unsigned, a wrongly signed, an altered and an older
#      bundle, and installs a newer signed one; the vault still opens afterwards;
#   5. `apt-get remove` takes the programs away and leaves the user's vault as it was.
# Needs root (debootstrap, chroot), as CI has. Mounts and the root are removed on any exit.
# COFFER_DEBOOTSTRAP_CACHE=DIR keeps the debootstrap tarball there for a second run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
source packaging/debian-deps.sh
coffer_install_packages "${COFFER_PACKAGING_PACKAGES[@]}" "${COFFER_INSTALL_TEST_PACKAGES[@]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "the install test needs root (debootstrap and chroot); CI runs it as root" >&2
    exit 1
fi

log() { printf '\n==> %s\n' "$*"; }
fail() { echo "INSTALL TEST FAILED: $*" >&2; exit 1; }

WORK="$(mktemp -d -t coffer-install-XXXXXX)"
CHROOT="$WORK/root"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# Every process whose root is the chroot was started by this script.
stop_chroot_processes() {
    local proc pid
    for signal in TERM KILL; do
        for proc in /proc/[0-9]*; do
            pid="${proc#/proc/}"
            [ "$(readlink "$proc/root" 2>/dev/null)" = "$CHROOT" ] && kill "-$signal" "$pid" 2>/dev/null || true
        done
        sleep 1
    done
}

cleanup() {
    local status=$?
    stop_chroot_processes
    local mounts
    mounts="$(findmnt -rn -o TARGET | grep -F "$CHROOT/" | sort -r || true)"
    for mount in $mounts; do umount -l "$mount" 2>/dev/null || true; done
    if findmnt -rn -o TARGET | grep -qF "$CHROOT/"; then
        echo "some mounts under $CHROOT are still there; leaving $WORK for you to remove" >&2
    else
        rm -rf "$WORK"
    fi
    [ "$status" -eq 0 ] || echo "INSTALL RESULT: FAIL" >&2
    exit "$status"
}
trap cleanup EXIT INT TERM

# The Debian 12 mirror this machine's own apt uses (no host name lives in the repository).
debian_mirror() {
    python3 - <<'PY'
import glob, re, sys
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" in fields.get("types", "").split() and "bookworm" in fields.get("suites", "").split():
            print(fields["uris"].split()[0])
            sys.exit(0)
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", line)
        if match:
            print(match.group(1))
            sys.exit(0)
sys.exit("no Debian 12 (bookworm) mirror in /etc/apt/sources.list or /etc/apt/sources.list.d")
PY
}

free_port_pair() {
    python3 -c '
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); port = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", port + 1)); print(port); break
    except OSError:
        pass
    finally:
        a.close(); b.close()'
}

# ---------------------------------------------------------------------------------------
log "a throw-away update key, and the packages signed with it"
TAURI="$ROOT/ui/node_modules/.bin/tauri"
[ -x "$TAURI" ] || coffer_build_ui
mkdir -p "$WORK/keys" "$WORK/other-keys" "$WORK/packages" "$WORK/newer"
"$TAURI" signer generate --ci -p "" -w "$WORK/keys/update.key" >/dev/null
"$TAURI" signer generate --ci -p "" -w "$WORK/other-keys/update.key" >/dev/null
export TAURI_SIGNING_PRIVATE_KEY_PATH="$WORK/keys/update.key" TAURI_SIGNING_PRIVATE_KEY_PASSWORD=""
START=$SECONDS
packaging/build.sh --debug --out "$WORK/packages" --update-pubkey "$WORK/keys/update.key.pub"
echo "   packages built in $((SECONDS - START)) s"
VERSION="$(python3 -c 'import json; print(json.load(open("src-tauri/tauri.conf.json"))["version"])')"
NEWER="$(python3 -c "v='$VERSION'.split('.'); v[2]=str(int(v[2])+1); print('.'.join(v))")"
packaging/build.sh --debug --out "$WORK/newer" --update-pubkey "$WORK/keys/update.key.pub" --version "$NEWER" >/dev/null
DEB="$(ls "$WORK"/packages/*.deb)"
NEWER_DEB="$(ls "$WORK"/newer/*.deb)"
[ -s "$DEB.sig" ] && [ -s "$WORK/packages/latest.json" ] || fail "the packages were not signed or latest.json is missing"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); assert m["platforms"]["linux-x86_64-deb"]["signature"]' \
    "$WORK/packages/latest.json" || fail "latest.json has no signed .deb entry"

log "lintian"
# No overrides: fix what it reports in packaging/ instead.
lintian --fail-on error,warning "$DEB" \
    || fail "lintian reports problems in the .deb"

# ---------------------------------------------------------------------------------------
log "a clean Debian 12 root"
MIRROR="$(debian_mirror)"
START=$SECONDS
if [ -n "${COFFER_DEBOOTSTRAP_CACHE:-}" ]; then
    mkdir -p "$COFFER_DEBOOTSTRAP_CACHE"
    TARBALL="$COFFER_DEBOOTSTRAP_CACHE/bookworm-minbase.tgz"
    [ -s "$TARBALL" ] || debootstrap --variant=minbase --make-tarball="$TARBALL" bookworm "$WORK/tarball-work" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap could not download Debian 12"; }
    debootstrap --variant=minbase --unpack-tarball="$TARBALL" bookworm "$CHROOT" "$MIRROR" >>"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
else
    debootstrap --variant=minbase bookworm "$CHROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
fi
echo "   debootstrap took $((SECONDS - START)) s"
mount -t proc proc "$CHROOT/proc"
mkdir -p "$CHROOT/dev/shm"
mount -t tmpfs -o mode=1777,size=256m tmpfs "$CHROOT/dev/shm"
for node in null zero full random urandom tty; do
    # debootstrap made these as device nodes, or (inside a container) as empty files.
    if [ ! -c "$CHROOT/dev/$node" ]; then
        rm -f "$CHROOT/dev/$node"
        touch "$CHROOT/dev/$node"
        mount --bind "/dev/$node" "$CHROOT/dev/$node"
    fi
done
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"

in_root() {
    chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}
as_user() {
    chroot --userspec=tester:tester "$CHROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/home/tester \
        USER=tester LANG=C.UTF-8 XDG_RUNTIME_DIR=/home/tester/runtime "$@"
}

log "installing the .deb with apt-get"
START=$SECONDS
cp "$DEB" "$CHROOT/tmp/coffer.deb"
in_root apt-get update -qq
in_root apt-get install -y -qq man-db xvfb x11-utils x11-apps >"$WORK/apt-tools.log" 2>&1 \
    || { tail -20 "$WORK/apt-tools.log"; fail "the test's own tools did not install"; }
in_root apt-get install -y /tmp/coffer.deb >"$WORK/apt-coffer.log" 2>&1 \
    || { tail -30 "$WORK/apt-coffer.log"; fail "apt-get could not install the .deb"; }
echo "   installed in $((SECONDS - START)) s"
grep -q 'usermod -aG tss' "$WORK/apt-coffer.log" || fail "the post-install note on the tss group was not shown"
in_root useradd --create-home --shell /bin/bash tester
in_root install -d -m 0700 -o tester -g tester /home/tester/runtime

log "coffer --version and man coffer"
in_root test -x /usr/libexec/coffer/coffer-tpm || fail "coffer-tpm is not installed"
as_user coffer --version | grep -qx "coffer $VERSION" || fail "coffer --version does not say $VERSION"
as_user env MANPAGER=cat MANWIDTH=80 man coffer | grep -q "coffer-self-update\|self-update" \
    || fail "man coffer does not show the man page"
for unit in coffer-agent coffer-daemon; do
    in_root test -f "/usr/lib/systemd/user/$unit.service" || fail "$unit.service is not installed"
done
in_root test -f /usr/share/bash-completion/completions/coffer || fail "no bash completion"

log "coffer init, create and get on a swtpm"
PORT="$(free_port_pair)"
as_user mkdir -m 0700 /home/tester/tpm
as_user swtpm socket --tpm2 --tpmstate dir=/home/tester/tpm --daemon --pid file=/home/tester/tpm/pid \
    --server "type=tcp,port=$PORT,bindaddr=127.0.0.1" --ctrl "type=tcp,port=$((PORT + 1)),bindaddr=127.0.0.1" \
    --flags not-need-init,startup-clear
as_user sh -c 'umask 077; printf "install-test-pin-4821" >/home/tester/pin'
coffer_user() {
    as_user env COFFER_TCTI="swtpm:host=127.0.0.1,port=$PORT" COFFER_PIN_FILE=/home/tester/pin coffer "$@"
}
coffer_user init >/dev/null || fail "coffer init failed"
printf 'value-from-the-install-test' | coffer_user secret create install/check --value-file - >/dev/null \
    || fail "coffer secret create failed"
[ "$(coffer_user secret get install/check)" = value-from-the-install-test ] || fail "coffer secret get returned another value"
VAULT="$CHROOT/home/tester/.local/share/coffer/vault.db"
[ -f "$VAULT" ] || fail "the vault is not where the docs say ($VAULT)"

log "the app under Xvfb, up to its first window"
DISPLAY_NUM=150
while [ -e "/tmp/.X$DISPLAY_NUM-lock" ] || [ -e "$CHROOT/tmp/.X$DISPLAY_NUM-lock" ]; do DISPLAY_NUM=$((DISPLAY_NUM + 1)); done
as_user Xvfb ":$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
for _ in $(seq 50); do [ -e "$CHROOT/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.1; done
# The app's own vault and software TPM, apart from the CLI's.
as_user env DISPLAY=":$DISPLAY_NUM" NO_AT_BRIDGE=1 XDG_DATA_HOME=/home/tester/app-data coffer-app \
    >"$WORK/app.log" 2>&1 &
APP=$!
WINDOW=""
for _ in $(seq 120); do
    kill -0 "$APP" 2>/dev/null || { cat "$WORK/app.log"; fail "the app exited before showing a window"; }
    if as_user env DISPLAY=":$DISPLAY_NUM" xwininfo -root -tree 2>/dev/null | grep -q '"Coffer"'; then
        WINDOW=yes
        break
    fi
    sleep 0.5
done
[ -n "$WINDOW" ] || { cat "$WORK/app.log"; fail "the app showed no window named Coffer within 60 s"; }
# Give WebKit time to draw the first screen, then keep a picture of it.
sleep 8
kill -0 "$APP" 2>/dev/null || { cat "$WORK/app.log"; fail "the app exited after showing its window"; }
as_user env DISPLAY=":$DISPLAY_NUM" xwd -root -silent >"$WORK/screen.xwd"
SHOT="${E2E_SCREENSHOTS:-$ROOT/docs/screenshots}/installed-app.png"
mkdir -p "$(dirname "$SHOT")"
convert "xwd:$WORK/screen.xwd" "$SHOT"
COLOURS="$(convert "$SHOT" -format %k info:)"
[ "$COLOURS" -gt 64 ] || fail "the app's window looks empty ($COLOURS colours in $SHOT)"
echo "   first screen: $SHOT ($COLOURS colours)"
kill "$APP" 2>/dev/null || true
wait "$APP" 2>/dev/null || true

log "coffer self-update refuses what it must, and installs a newer signed bundle"
cp "$DEB" "$DEB.sig" "$NEWER_DEB" "$NEWER_DEB.sig" "$CHROOT/tmp/"
NEWER_NAME="$(basename "$NEWER_DEB")"
cp "$CHROOT/tmp/$NEWER_NAME" "$CHROOT/tmp/unsigned.deb"
cp "$CHROOT/tmp/$NEWER_NAME" "$CHROOT/tmp/other-key.deb"
(cd "$WORK" && TAURI_SIGNING_PRIVATE_KEY_PATH="$WORK/other-keys/update.key" "$TAURI" signer sign "$CHROOT/tmp/other-key.deb" >/dev/null)
cp "$CHROOT/tmp/$NEWER_NAME" "$CHROOT/tmp/altered.deb"
cp "$CHROOT/tmp/$NEWER_NAME.sig" "$CHROOT/tmp/altered.deb.sig"
python3 - "$CHROOT/tmp/altered.deb" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
data[len(data) // 2] ^= 0x01
open(path, "wb").write(data)
PY
refused() { # $1: what, $2: text the refusal must contain, $3...: arguments
    local what="$1" needle="$2"
    shift 2
    local out status=0
    out="$(in_root coffer self-update "$@" 2>&1)" || status=$?
    [ "$status" -ne 0 ] || fail "self-update installed $what"
    grep -q "$needle" <<<"$out" || fail "self-update refused $what without saying \"$needle\": $out"
    echo "   refused $what: $out"
}
refused "an unsigned bundle" "unsigned" --file /tmp/unsigned.deb
refused "a bundle signed by another key" "another key" --file /tmp/other-key.deb
refused "an altered bundle" "changed after it was signed" --file /tmp/altered.deb
refused "the running version" "not newer" --file "/tmp/$(basename "$DEB")"
[ "$(in_root dpkg-query -W -f='${Version}' coffer)" = "$VERSION" ] || fail "a refused bundle changed the installed version"
in_root coffer self-update --file "/tmp/$NEWER_NAME" || fail "self-update did not install the newer signed bundle"
[ "$(in_root dpkg-query -W -f='${Version}' coffer)" = "$NEWER" ] || fail "the newer bundle is not installed"
grep -q "\"to\":\"$NEWER\"" "$CHROOT/var/log/coffer/updates.log" || fail "the update is not in /var/log/coffer/updates.log"
[ "$(coffer_user secret get install/check)" = value-from-the-install-test ] || fail "the vault does not open after the update"
refused "an older bundle" "not newer" --file "/tmp/$(basename "$DEB")"
in_root coffer self-update --allow-downgrade --file "/tmp/$(basename "$DEB")" >/dev/null 2>&1 \
    || fail "self-update --allow-downgrade did not install the older bundle"
grep -q '"downgrade":true' "$CHROOT/var/log/coffer/updates.log" || fail "the downgrade was not logged"

log "apt-get remove leaves the vault alone"
BEFORE="$(sha256sum "$VAULT" | cut -d' ' -f1)"
kill "$(cat "$CHROOT/home/tester/tpm/pid")" 2>/dev/null || true
in_root apt-get remove -y -qq coffer >"$WORK/apt-remove.log" 2>&1 || { cat "$WORK/apt-remove.log"; fail "apt-get remove failed"; }
in_root test ! -e /usr/bin/coffer || fail "/usr/bin/coffer is still there after apt-get remove"
[ -f "$VAULT" ] || fail "apt-get remove deleted the vault"
[ "$(sha256sum "$VAULT" | cut -d' ' -f1)" = "$BEFORE" ] || fail "apt-get remove changed the vault"

echo
echo "INSTALL RESULT: PASS"
