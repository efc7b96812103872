#!/usr/bin/env bash
# Install test: Coffer's .deb in a clean Debian 12 root, as a user would get it.
#   1. builds the packages from the debug build CI already made (packaging/build.sh
#      --debug), signed with a throw-away update key made here, and lints the .deb;
#   2. makes a minimal Debian 12 root with debootstrap from the Debian mirror this
#      machine's apt sources name, and installs the .deb into it with apt-get;
#   3. in there, as an ordinary user: `coffer --version`, `man coffer`, `coffer init` +
#      create + get on a swtpm, and the app under Xvfb up to its first window (screenshot
#      in docs/screenshots/installed-app.png);
#   4. the real N -> N+1 update from a file: version N+1 is the same sources built again
#      with the next patch version (packaging/build.sh --version); `coffer self-update`,
#      the privileged half of the app's "Install", refuses an unsigned, a wrongly signed, an
#      altered and an older bundle with the running version still working, and installs
#      N+1, after which `coffer --version` says N+1, the N+1 app starts, and every secret
#      reads back as it was written; N is then refused as a downgrade unless forced;
#   5. the installed app itself updates N -> N+1, online from a local HTTPS endpoint and from a
#      file, with "Install and restart" (pkexec), and reads every secret after the restart
#      (tests/install/app-update.sh; a screenshot in docs/screenshots/update-installed.png);
#   6. `apt-get remove` takes the programs away and leaves the user's vault as it was.
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
# A genuine N+1: the same sources rebuilt as version $NEWER into the same target dir (only
# Coffer's own crates recompile), so the programs themselves say $NEWER.
START=$SECONDS
packaging/build.sh --debug --out "$WORK/newer" --update-pubkey "$WORK/keys/update.key.pub" --version "$NEWER" \
    >"$WORK/build-newer.log" 2>&1 || { tail -30 "$WORK/build-newer.log"; fail "version $NEWER did not build"; }
echo "   version $NEWER built and packaged in $((SECONDS - START)) s"
DEB="$(ls "$WORK"/packages/*.deb)"
NEWER_DEB="$(ls "$WORK"/newer/*.deb)"
[ -s "$DEB.sig" ] && [ -s "$WORK/packages/latest.json" ] || fail "the packages were not signed or latest.json is missing"
# latest.json as the app's updater reads it (tauri-plugin-updater's static manifest).
check_manifest() { # $1: folder, $2: version
    python3 - "$1" "$2" <<'PY'
import datetime, json, pathlib, sys
folder, version = pathlib.Path(sys.argv[1]), sys.argv[2]
manifest = json.load(open(folder / "latest.json"))
assert manifest["version"] == version, f"latest.json says {manifest['version']}, not {version}"
assert manifest["notes"], "latest.json has no notes"
datetime.datetime.strptime(manifest["pub_date"], "%Y-%m-%dT%H:%M:%SZ")
kinds = {"linux-x86_64-deb": ".deb", "linux-x86_64-rpm": ".rpm"}
assert set(manifest["platforms"]) == set(kinds), manifest["platforms"].keys()
for platform, suffix in kinds.items():
    entry = manifest["platforms"][platform]
    assert entry["url"].endswith(suffix), entry["url"]
    package = folder / entry["url"].rsplit("/", 1)[-1]
    assert entry["signature"] == (folder / (package.name + ".sig")).read_text().strip(), platform
PY
}
check_manifest "$WORK/packages" "$VERSION" || fail "latest.json of version $VERSION is not what the updater reads"
check_manifest "$WORK/newer" "$NEWER" || fail "latest.json of version $NEWER is not what the updater reads"

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
# webkit2gtk-driver, polkitd, pkexec and dbus-daemon: the installed app's own update (step 5).
in_root apt-get install -y -qq man-db xvfb x11-utils x11-apps webkit2gtk-driver polkitd pkexec dbus-daemon \
    >"$WORK/apt-tools.log" 2>&1 \
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
# More secrets for the update to carry over: several names, a second version, a multi-line value.
printf 'postgres://app:first@127.0.0.1/app' | coffer_user secret create db/url --value-file - >/dev/null
printf 'postgres://app:second@127.0.0.1/app' | coffer_user secret put db/url --value-file - >/dev/null
printf -- '-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n' | coffer_user secret create tls/key --value-file - >/dev/null
printf 'sk_live_4f9a' | coffer_user secret create api/token --value-file - >/dev/null \
    || fail "coffer secret create/put failed"
# What every secret reads as: the sorted names, then per secret its versions with their
# labels and keys, and the value of every version.
vault_contents() {
    local name versions id
    coffer_user secret list -o json | python3 -c 'import json,sys
d = json.load(sys.stdin)
items = d if isinstance(d, list) else next(v for v in d.values() if isinstance(v, list))
print("\n".join(sorted(i.get("name") or i.get("Name") for i in items)))' || return 1
    for name in install/check db/url tls/key api/token; do
        versions="$(coffer_user secret versions "$name" -o json)" || return 1
        printf '%s versions: %s\n' "$name" "$versions"
        for id in $(python3 -c 'import json,sys
d = json.loads(sys.argv[1])
items = d if isinstance(d, list) else next(v for v in d.values() if isinstance(v, list))
print(" ".join(sorted(i["version_id"] for i in items)))' "$versions"); do
            printf '%s@%s=' "$name" "$id"
            coffer_user secret get "$name" --version-id "$id" | sha256sum || return 1
        done
    done
}
CONTENTS="$(vault_contents)" || fail "the vault's secrets could not be read"
grep -qx 'api/token' <<<"$CONTENTS" && grep -qx 'tls/key' <<<"$CONTENTS" || fail "coffer secret list misses secrets: $CONTENTS"
[ "$(grep -c '^db/url@' <<<"$CONTENTS")" -eq 2 ] || fail "db/url should have two versions: $CONTENTS"
VAULT="$CHROOT/home/tester/.local/share/coffer/vault.db"
[ -f "$VAULT" ] || fail "the vault is not where the docs say ($VAULT)"

log "the app under Xvfb, up to its first window"
DISPLAY_NUM=150
while [ -e "/tmp/.X$DISPLAY_NUM-lock" ] || [ -e "$CHROOT/tmp/.X$DISPLAY_NUM-lock" ]; do DISPLAY_NUM=$((DISPLAY_NUM + 1)); done
as_user Xvfb ":$DISPLAY_NUM" -screen 0 1280x800x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
for _ in $(seq 50); do [ -e "$CHROOT/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.1; done
# Starts the installed app (its own vault and software TPM, apart from the CLI's), waits for
# its window, lets WebKit draw, and saves a picture of the window alone to $1 (if given).
app_window() { # $1: screenshot path or ""
    as_user env DISPLAY=":$DISPLAY_NUM" NO_AT_BRIDGE=1 XDG_DATA_HOME=/home/tester/app-data coffer-app \
        >"$WORK/app.log" 2>&1 &
    local app=$! window=""
    for _ in $(seq 120); do
        kill -0 "$app" 2>/dev/null || { cat "$WORK/app.log"; fail "the app exited before showing a window"; }
        window="$(as_user env DISPLAY=":$DISPLAY_NUM" xwininfo -root -tree 2>/dev/null |
            sed -n 's/^ *\(0x[0-9a-f]*\) "Coffer": .*/\1/p' | head -1)"
        [ -n "$window" ] && break
        sleep 0.5
    done
    [ -n "$window" ] || { cat "$WORK/app.log"; fail "the app showed no window named Coffer within 60 s"; }
    # Give WebKit time to draw the first screen, then keep a picture of the window.
    sleep 8
    kill -0 "$app" 2>/dev/null || { cat "$WORK/app.log"; fail "the app exited after showing its window"; }
    if [ -n "$1" ]; then
        as_user env DISPLAY=":$DISPLAY_NUM" xwd -id "$window" -silent >"$WORK/window.xwd"
        mkdir -p "$(dirname "$1")"
        convert "xwd:$WORK/window.xwd" "$1"
        local colours
        colours="$(convert "$1" -format %k info:)"
        [ "$colours" -gt 64 ] || fail "the app's window looks empty ($colours colours in $1)"
        echo "   first screen: $1 ($colours colours, $(identify -format %wx%h "$1"))"
    fi
    kill "$app" 2>/dev/null || true
    wait "$app" 2>/dev/null || true
}
app_window "${E2E_SCREENSHOTS:-$ROOT/docs/screenshots}/installed-app.png"

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
# The running version (and its vault) must be untouched by a refusal.
still_running() { # $1: the version that must be running
    [ "$(in_root dpkg-query -W -f='${Version}' coffer)" = "$1" ] || fail "a refused bundle changed the installed package"
    [ "$(as_user coffer --version)" = "coffer $1" ] || fail "coffer --version is no longer $1 after a refusal"
    [ "$(vault_contents)" = "$CONTENTS" ] || fail "the vault does not read as before after a refusal"
}
refused() { # $1: what, $2: text the refusal must contain, $3...: arguments
    local what="$1" needle="$2"
    shift 2
    local out status=0 running
    running="$(in_root dpkg-query -W -f='${Version}' coffer)"
    out="$(in_root coffer self-update "$@" 2>&1)" || status=$?
    [ "$status" -ne 0 ] || fail "self-update installed $what"
    grep -q "$needle" <<<"$out" || fail "self-update refused $what without saying \"$needle\": $out"
    grep -q "nothing was installed" <<<"$out" || fail "self-update refused $what without saying nothing was installed: $out"
    echo "   refused $what: $out"
    still_running "$running"
}
refused "an unsigned bundle" "unsigned" --file /tmp/unsigned.deb
refused "a bundle signed by another key" "another key" --file /tmp/other-key.deb
refused "an altered bundle" "changed after it was signed" --file /tmp/altered.deb
refused "the running version" "not newer" --file "/tmp/$(basename "$DEB")"
in_root coffer self-update --file "/tmp/$NEWER_NAME" || fail "self-update did not install the newer signed bundle"
[ "$(in_root dpkg-query -W -f='${Version}' coffer)" = "$NEWER" ] || fail "the newer bundle is not installed"
[ "$(as_user coffer --version)" = "coffer $NEWER" ] || fail "after the update coffer --version says $(as_user coffer --version), not $NEWER"
grep -q "\"to\":\"$NEWER\"" "$CHROOT/var/log/coffer/updates.log" || fail "the update is not in /var/log/coffer/updates.log"
[ "$(vault_contents)" = "$CONTENTS" ] || fail "after the update to $NEWER the vault does not read as before"
echo "   coffer $NEWER is installed and reads every secret as it was written"
app_window "" # the updated app starts up to its window
refused "an older bundle" "not newer" --file "/tmp/$(basename "$DEB")"
in_root coffer self-update --allow-downgrade --file "/tmp/$(basename "$DEB")" >/dev/null 2>&1 \
    || fail "self-update --allow-downgrade did not install the older bundle"
grep -q '"downgrade":true' "$CHROOT/var/log/coffer/updates.log" || fail "the downgrade was not logged"
[ "$(as_user coffer --version)" = "coffer $VERSION" ] || fail "the forced downgrade did not bring back $VERSION"
[ "$(vault_contents)" = "$CONTENTS" ] || fail "after the downgrade the vault does not read as before"

# shellcheck source=tests/install/app-update.sh
source "$ROOT/tests/install/app-update.sh"

log "apt-get remove leaves the vault alone"
BEFORE="$(sha256sum "$VAULT" | cut -d' ' -f1)"
kill "$(cat "$CHROOT/home/tester/tpm/pid")" 2>/dev/null || true
in_root apt-get remove -y -qq coffer >"$WORK/apt-remove.log" 2>&1 || { cat "$WORK/apt-remove.log"; fail "apt-get remove failed"; }
in_root test ! -e /usr/bin/coffer || fail "/usr/bin/coffer is still there after apt-get remove"
[ -f "$VAULT" ] || fail "apt-get remove deleted the vault"
[ "$(sha256sum "$VAULT" | cut -d' ' -f1)" = "$BEFORE" ] || fail "apt-get remove changed the vault"

echo
echo "INSTALL RESULT: PASS"
