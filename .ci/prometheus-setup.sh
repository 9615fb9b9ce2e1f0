#!/usr/bin/env bash
# Installs Debian's Prometheus and Alertmanager for tests/metrics_scrape.rs and the deploy/ checks:
# `prometheus` (the server the scrape test starts on an ephemeral port, and promtool) and
# `prometheus-alertmanager` (amtool). Neither service is started: the tests run their own server
# with a temporary configuration and storage directory. Idempotent; must be run as root.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

log() { echo "prometheus-setup: $*"; }

need_install=0
for tool in /usr/bin/prometheus /usr/bin/promtool /usr/bin/amtool; do
    [ -x "$tool" ] || need_install=1
done
if [ "$need_install" = 0 ]; then
    log "prometheus, promtool and amtool already installed"
    exit 0
fi

# The packages' maintainer scripts start their services; a policy-rc.d that forbids service starts
# keeps a stray Prometheus off :9090 on a machine without systemd.
policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ "$had_policy" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

log "installing prometheus, prometheus-alertmanager"
apt-get update -qq
# --no-install-recommends keeps out the node exporter and the web console assets.
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
log "$(promtool --version 2>&1 | head -n 1)"
log "$(amtool --version 2>&1 | head -n 1)"
