#!/usr/bin/env bash
# Installs CUPS, Debian's Gutenprint driver and our test backend, and starts the scheduler on this
# machine, for tests/cups_printer.rs and tests/cups_gutenprint.rs (see docs/printers.md).
#
# CI machines here run without systemd (PID 1 is not an init system), so cupsd is started directly
# as a daemon. Idempotent: installs only what is missing, restarts cupsd only when its configuration
# changed, starts it only when it is not running. Must be run as root.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

log() { echo "cups-setup: $*"; }

# cups: the scheduler and lpadmin; cups-client: lp, lpstat, cancel, cupsenable, cupsaccept;
# cups-bsd: lpr/lpq, which some operators use by hand. Installed together so every tool is there.
need_install=0
for tool in /usr/sbin/cupsd /usr/sbin/lpadmin /usr/bin/lp /usr/bin/lpstat /usr/sbin/cupsenable \
    /usr/sbin/cupsaccept /usr/bin/cancel /usr/bin/lpr; do
    [ -x "$tool" ] || need_install=1
done
if [ "$need_install" = 1 ]; then
    log "installing cups, cups-client, cups-bsd"
    apt-get update -qq
    # --no-install-recommends keeps out avahi, printer drivers and the like; the tests use their own
    # backend script and need no driver.
    apt-get install -y -qq --no-install-recommends cups cups-client cups-bsd >/dev/null
else
    log "cups tools already installed"
fi

# The real dye-sub driver (DNP, Citizen, Mitsubishi, Canon SELPHY…): tests/cups_gutenprint.rs makes
# queues with its DS620 and CP1300 PPDs and decodes what it sends to the printer. Its filters need
# cups-filters (imagetoraster), which it depends on.
if ! dpkg -s printer-driver-gutenprint >/dev/null 2>&1; then
    log "installing printer-driver-gutenprint"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends printer-driver-gutenprint >/dev/null
else
    log "gutenprint already installed"
fi

# The test queues deliver into a capture backend (tests/fixtures/cups/photoboothd-capture), which
# CUPS only runs from its backend folder, owned by root and not writable by others (0755 runs it as
# `lp`, 0700 as root). Installed here so the test needs no root-only steps of its own beyond
# lpadmin. Its knobs make it report `STATE: +media-empty-error` and fail, like a dye-sub out of media.
here="$(cd "$(dirname "$0")/.." && pwd)"
backend_src="$here/tests/fixtures/cups/photoboothd-capture"
backend_dir=/usr/lib/cups/backend
if [ -f "$backend_src" ]; then
    if ! cmp -s "$backend_src" "$backend_dir/photoboothd-capture"; then
        log "installing the photoboothd-capture backend"
        install -o root -g root -m 0755 "$backend_src" "$backend_dir/photoboothd-capture"
    fi
fi

# Where the capture backend writes. cupsd runs backends as the unprivileged user `lp` (mode 0755
# backends) so the folder must be writable by it; sticky like /tmp so runs cannot remove each other's
# captures.
mkdir -p /tmp/photoboothd-cups-capture
chmod 1777 /tmp/photoboothd-cups-capture

# Lets file: device URIs work too (off by default); harmless for the capture backend, and handy for a
# person debugging a queue by hand.
restart=0
files_conf=/etc/cups/cups-files.conf
if [ -f "$files_conf" ] && ! grep -q '^FileDevice Yes' "$files_conf"; then
    log "enabling FileDevice in $files_conf"
    sed -i '/^FileDevice /d' "$files_conf"
    echo 'FileDevice Yes' >>"$files_conf"
    restart=1
fi

scheduler_running() {
    LANG=C LC_ALL=C lpstat -r 2>/dev/null | grep -q 'scheduler is running'
}

# Only the pid of the cupsd we can see; never a broad pkill.
cupsd_pid() {
    local pid=""
    if [ -f /run/cups/cupsd.pid ]; then
        pid="$(cat /run/cups/cupsd.pid 2>/dev/null || true)"
    fi
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        pid="$(pidof cupsd 2>/dev/null | awk '{print $1}' || true)"
    fi
    echo "$pid"
}

if [ "$restart" = 1 ] && scheduler_running; then
    pid="$(cupsd_pid)"
    if [ -n "$pid" ]; then
        log "restarting cupsd (pid $pid) for the new configuration"
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
fi

if scheduler_running; then
    log "cupsd already running"
else
    log "starting cupsd"
    mkdir -p /run/cups /var/spool/cups /var/cache/cups /var/log/cups
    # Without -f or -F cupsd forks into the background itself and survives this script.
    /usr/sbin/cupsd
    for _ in $(seq 1 100); do
        scheduler_running && break
        sleep 0.1
    done
    if ! scheduler_running; then
        log "cupsd did not start; last lines of its error log:"
        tail -n 20 /var/log/cups/error_log 2>/dev/null || true
        exit 1
    fi
    log "cupsd running"
fi
