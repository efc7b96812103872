#!/usr/bin/env bash
# Makes (once) the Python virtual environment the AWS-compatible API's system test runs
# real clients from: boto3 and the AWS CLI, from PyPI through pip. Prints the venv's
# python. The venv lives in $COFFER_AWS_VENV (default: target/aws-venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${COFFER_AWS_VENV:-${CARGO_TARGET_DIR:-target}/aws-venv}"
# Absolute, because the test that runs the printed python does so from another directory.
[[ "$venv" == /* ]] || venv="$PWD/$venv"
# Pinned together: the AWS CLI v1 requires the botocore that boto3 of the same line uses.
packages=(boto3==1.44.18 botocore==1.44.18 awscli==1.46.3)
stamp="$venv/.coffer-packages"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${packages[*]}" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" >&2
    echo "${packages[*]}" >"$stamp"
fi
echo "$venv/bin/python"
