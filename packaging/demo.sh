#!/usr/bin/env bash
# Builds Coffer and opens an interactive demo shell with a ready vault.
#
# Uses the machine's TPM when /dev/tpmrm0 is usable; otherwise starts a software TPM
# (swtpm) in a temporary directory, which protects nothing and is labelled as such.
# Everything the demo creates lives in that temporary directory and is removed on exit.
#
#   packaging/demo.sh              interactive shell
#   packaging/demo.sh --self-test  the same set-up and tour, non-interactively (used by CI)
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/debian-deps.sh
coffer_install_packages "${COFFER_BUILD_PACKAGES[@]}" "${COFFER_TPM_PACKAGES[@]}"
coffer_require_cargo

self_test=false
[ "${1:-}" = "--self-test" ] && self_test=true

profile="${COFFER_BUILD_PROFILE:-release}"
echo "Building coffer ($profile)…" >&2
cargo build --quiet --profile "$profile" -p coffer-cli
case "$profile" in dev) coffer_bin="$PWD/target/debug/coffer" ;; *) coffer_bin="$PWD/target/$profile/coffer" ;; esac

demo_dir=$(mktemp -d -t coffer-demo.XXXXXX)
chmod 700 "$demo_dir"
swtpm_pid=""
cleanup() {
    if [ -n "$swtpm_pid" ]; then kill "$swtpm_pid" 2>/dev/null || true; wait "$swtpm_pid" 2>/dev/null || true; fi
    rm -rf "$demo_dir"
}
trap cleanup EXIT

export TSS2_LOG=all+NONE
if [ -r /dev/tpmrm0 ] && [ -w /dev/tpmrm0 ]; then
    export COFFER_TCTI="device:/dev/tpmrm0"
    tpm_label="hardware TPM (/dev/tpmrm0)"
else
    mkdir -p "$demo_dir/swtpm"
    # Two consecutive loopback ports. A port nothing answers on may still be bound (by
    # another program's outgoing connection), so if swtpm cannot bind it exits, and we
    # try other ports.
    started=""
    for _ in $(seq 20); do
        port=$((20000 + RANDOM % 30000))
        ctrl=$((port + 1))
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$ctrl") 2>/dev/null; then
            continue
        fi
        swtpm socket --tpm2 --tpmstate dir="$demo_dir/swtpm" \
            --server type=tcp,port="$port",bindaddr=127.0.0.1 \
            --ctrl type=tcp,port="$ctrl",bindaddr=127.0.0.1 \
            --flags not-need-init,startup-clear 2>"$demo_dir/swtpm.log" &
        swtpm_pid=$!
        for _ in $(seq 50); do
            if ! kill -0 "$swtpm_pid" 2>/dev/null; then
                break
            fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                started=1
                break
            fi
            sleep 0.1
        done
        [ -n "$started" ] && break
        kill "$swtpm_pid" 2>/dev/null || true
        wait "$swtpm_pid" 2>/dev/null || true
        swtpm_pid=""
    done
    if [ -z "$started" ]; then
        echo "coffer demo: the software TPM did not start: $(cat "$demo_dir/swtpm.log" 2>/dev/null)" >&2
        exit 1
    fi
    export COFFER_TCTI="swtpm:host=127.0.0.1,port=$port"
    tpm_label="SOFTWARE TPM — NOT SECURE (swtpm, demo only)"
fi

export COFFER_VAULT="$demo_dir/vault/vault.db"
export PATH="$(dirname "$coffer_bin"):$PATH"

banner() {
    cat <<MSG

  Coffer demo
  TPM:    $tpm_label
  Vault:  $COFFER_VAULT (deleted when you leave)

MSG
}

if $self_test; then
    banner
    printf 'demo-pin-1234' > "$demo_dir/pin"
    export COFFER_PIN_FILE="$demo_dir/pin"
    coffer init
    printf 's3cr3t-demo-value' | coffer secret create demo/db-password --description "Demo database password" --tag env=demo
    test "$(coffer secret get demo/db-password)" = "s3cr3t-demo-value"
    coffer secret put demo/db-password --generate --length 24 >/dev/null
    coffer secret versions demo/db-password
    coffer secret list
    coffer audit verify
    echo "Demo self-test passed."
    exit 0
fi

banner
echo "First, create the vault (choose a PIN of 4 or more characters):"
coffer init
cat <<'MSG'

Try, for example:
  coffer secret create demo/api-key --description "My API key"   (type the value at the prompt)
  coffer secret get demo/api-key
  coffer secret put demo/api-key --generate
  coffer secret versions demo/api-key
  coffer secret list
  coffer key create --alias alias/team --description "Team key"
  coffer audit list
  coffer --help
Type `exit` to end the demo (its vault and TPM are deleted).
MSG
PS1='coffer-demo$ ' bash --norc -i
