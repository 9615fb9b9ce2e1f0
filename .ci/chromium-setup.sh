#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver for tests/kiosk_e2e.rs (the kiosk UI end to end).
#
# Debian packages: chromium (the browser, /usr/bin/chromium) and chromium-driver
# (/usr/bin/chromedriver), always the same version from the same archive, so the driver matches the
# browser. fonts-dejavu-core is the kiosk page's first font (the Pi OS has it), so screenshots look
# like the booth. Recommends are left out (upower, a notification daemon, printer tools): the tests
# run Chromium headless with no GPU.
#
# Idempotent: installs only what is missing and touches nothing else. Must be run as root.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

log() { echo "chromium-setup: $*"; }

packages=(chromium chromium-driver fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "chromium, chromium-driver and fonts already installed"
fi

for tool in /usr/bin/chromium /usr/bin/chromedriver; do
    if [ ! -x "$tool" ]; then
        log "$tool is missing after the install"
        exit 1
    fi
done

# Both report their version; a mismatch would make every WebDriver session fail at start.
browser="$(/usr/bin/chromium --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -n1 || true)"
driver="$(/usr/bin/chromedriver --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -n1 || true)"
log "chromium $browser, chromedriver $driver"
if [ -n "$browser" ] && [ -n "$driver" ] && [ "${browser%%.*}" != "${driver%%.*}" ]; then
    log "chromium and chromedriver major versions differ; install both from the same archive"
    exit 1
fi
