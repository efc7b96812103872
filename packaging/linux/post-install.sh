#!/bin/sh
# After installing Coffer (.deb postinst: "configure"; .rpm %post: a count): say how to
# reach the TPM. Changes nothing on the system.
set -e
case "${1:-}" in
    configure | [0-9]*)
        cat <<'NOTE'
Coffer keeps its master keys in the TPM at /dev/tpmrm0, which the group "tss" may use.
To give your account access:   sudo usermod -aG tss "$USER"   (then log out and in again).
Without a TPM device the desktop app starts a software TPM (package swtpm) for you.
The agent and the daemon can run as systemd user services (installed, not enabled):
see /usr/share/doc/coffer/README.Debian.
NOTE
        ;;
esac
exit 0
