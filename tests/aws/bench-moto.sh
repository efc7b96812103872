#!/usr/bin/env bash
# The AWS API benchmark's workload against moto_server (an in-memory Secrets Manager
# fake from PyPI), for comparison in docs/benchmarks.md: makes a venv with moto, starts
# moto_server on a free loopback port, runs the bench against it, stops moto by its PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${COFFER_MOTO_VENV:-${CARGO_TARGET_DIR:-target}/moto-venv}"
if [[ ! -x "$venv/bin/moto_server" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.6" >&2
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto=$!
trap 'kill "$moto" 2>/dev/null || true; wait "$moto" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
done
COFFER_BENCH_ENDPOINT="127.0.0.1:$port" cargo bench -p coffer-aws-server --bench get_secret_value
