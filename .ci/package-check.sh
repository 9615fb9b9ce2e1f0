#!/usr/bin/env bash
# Checks the deployment pieces and builds the .deb:
#   1. systemd-analyze verify on every unit (system, user and the tunnel example), without systemd
#      running as PID 1: each system unit is verified inside a throw-away root that holds this
#      machine's stock units (for sysinit.target, network.target, modprobe@.service) and a stand-in
#      for the ExecStart binary; the user unit with a throw-away XDG_RUNTIME_DIR. Any output fails.
#   2. systemd-analyze security --offline=true on photoboothd.service: prints the exposure and fails
#      above 2.5.
#   3. cargo build --release, then cargo deb --no-build (a release build, as shipped).
#   4. dpkg-deb -c / -I: the files, conffiles, modes, dependencies and maintainer scripts expected;
#      the packaged units verified again at their installed paths with the real binary.
#   5. lintian, informational, when PACKAGE_CHECK_LINTIAN=1.
#   6. PACKAGE_CHECK_INSTALL=1: dpkg -i, check the user, groups, key and statoverride, then
#      dpkg --purge (changes this machine: only on a throw-away one).
# Every step is timed. Run as root: bash .ci/package-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never DEBIAN_FRONTEND=noninteractive
MAX_EXPOSURE=2.5
UNIT=systemd/photoboothd.service
USER_UNIT=systemd/user/photobooth-kiosk.service
TUNNEL=systemd/photobooth-tunnel.service.example
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; timings' EXIT

declare -a TIMINGS=()
CURRENT=""
STARTED=0
# step NAME COMMAND...: runs and times one step. Inside a step, a failed check calls `fail`, which
# ends the whole script (set -e does not apply inside a function called from `||`).
step() {
    local name=$1 rc=0
    shift
    echo "== $name"
    CURRENT=$name
    STARTED=$(date +%s)
    "$@" || rc=$?
    record "$([ $rc = 0 ] || echo "  FAILED (exit $rc)")"
    return $rc
}
record() {
    TIMINGS+=("$(printf '%-52s %4ss%s' "$CURRENT" $(($(date +%s) - STARTED)) "$1")")
    CURRENT=""
}
timings() {
    [ -z "$CURRENT" ] || record "  FAILED"
    echo "== timings"
    printf '  %s\n' "${TIMINGS[@]}"
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---- tools -------------------------------------------------------------------------------------
tools() {
    if ! command -v systemd-analyze >/dev/null; then
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd >/dev/null; } ||
            fail "cannot install systemd (for systemd-analyze)"
    fi
    systemd-analyze --version | head -n1
    if ! cargo deb --version >/dev/null 2>&1; then
        cargo install cargo-deb --locked || fail "cargo install cargo-deb"
    fi
    cargo deb --version
    command -v dpkg-deb >/dev/null || fail "dpkg-deb missing"
}
step "tools: systemd-analyze, cargo-deb" tools

# ---- 1. verify ---------------------------------------------------------------------------------
# make_root DIR: a root with the machine's stock system units, for dependency resolution.
make_root() {
    mkdir -p "$1/lib/systemd" "$1/etc/systemd/system" "$1/usr/bin"
    cp -a /lib/systemd/system "$1/lib/systemd/"
}
# verify_quiet ARGS...: systemd-analyze verify must exit 0 and print nothing (unknown keys and bad
# values are only warnings with exit status 0).
verify_quiet() {
    local out rc=0
    out=$(systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
    [ -z "$out" ] || echo "$out"
    [ $rc = 0 ] && [ -z "$out" ]
}
verify_sources() {
    local root=$WORK/src-root
    make_root "$root"
    printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/photoboothd"
    printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/cloudflared"
    chmod 755 "$root/usr/bin/photoboothd" "$root/usr/bin/cloudflared"
    cp "$UNIT" "$root/etc/systemd/system/photoboothd.service"
    cp "$TUNNEL" "$root/etc/systemd/system/photobooth-tunnel.service"
    echo "-- $UNIT"
    verify_quiet --root="$root" "$root/etc/systemd/system/photoboothd.service" || fail "$UNIT does not verify"
    echo "-- $TUNNEL"
    verify_quiet --root="$root" "$root/etc/systemd/system/photobooth-tunnel.service" || fail "$TUNNEL does not verify"
    echo "-- $USER_UNIT (--user)"
    mkdir -p "$WORK/xdg" && chmod 700 "$WORK/xdg"
    XDG_RUNTIME_DIR=$WORK/xdg verify_quiet --user "$USER_UNIT" || fail "$USER_UNIT does not verify"
    echo "all units verify cleanly"
}
step "systemd-analyze verify (sources)" verify_sources

# ---- 2. security -------------------------------------------------------------------------------
exposure_of() { # exposure_of UNIT-FILE: the overall exposure systemd-analyze gives it
    systemd-analyze security --offline=true --no-pager "$1" 2>&1 |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
security() {
    local report exposure tunnel=$WORK/photobooth-tunnel.service
    report=$(systemd-analyze security --offline=true --no-pager "$UNIT" 2>&1) || true
    # The findings that still cost exposure (name and weight), then the verdict.
    echo "$report" | awk '/^✗/ { w = $NF; if (w !~ /^[0-9.]+$/) w = "-"; printf "  %-46s %s\n", $2, w }'
    exposure=$(echo "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    [ -n "$exposure" ] || { echo "$report"; fail "no exposure level in the report"; }
    echo "EXPOSURE photoboothd.service: $exposure (limit $MAX_EXPOSURE)"
    # systemd-analyze wants a unit name: the example is checked under its installed name.
    cp "$TUNNEL" "$tunnel"
    echo "(photobooth-tunnel.service.example: $(exposure_of "$tunnel"))"
    awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' ||
        fail "exposure $exposure is above $MAX_EXPOSURE"
}
step "systemd-analyze security --offline=true" security

# ---- 3. build ----------------------------------------------------------------------------------
step "cargo build --release --locked" cargo build --release --locked
build_deb() {
    local out
    out=$(cargo deb --no-build --locked 2>&1) || { echo "$out"; fail "cargo deb"; }
    echo "$out"
    DEB=$(echo "$out" | grep '\.deb$' | tail -n1)
    [ -f "$DEB" ] || fail "cargo deb did not name a .deb"
    ls -l "$DEB"
}
step "cargo deb --no-build" build_deb

# ---- 4. contents -------------------------------------------------------------------------------
contents() {
    local listing control=$WORK/control tree=$WORK/tree
    listing=$(dpkg-deb -c "$DEB")
    echo "$listing" | awk '{print $1, $2, $6}'
    dpkg-deb -I "$DEB"
    # path must appear, with a mode when given
    local entry path mode
    for entry in \
        "./usr/bin/photoboothd -rwxr-xr-x" \
        "./usr/lib/systemd/system/photoboothd.service -rw-r--r--" \
        "./usr/lib/systemd/user/photobooth-kiosk.service -rw-r--r--" \
        "./etc/photobooth/photobooth.toml -rw-r-----" \
        "./usr/lib/udev/rules.d/99-photoboothd.rules -rw-r--r--" \
        "./usr/share/doc/photoboothd/README.md" \
        "./usr/share/doc/photoboothd/deploy.md" \
        "./usr/share/doc/photoboothd/copyright" \
        "./usr/share/doc/photoboothd/examples/photobooth-tunnel.service.example" \
        "./usr/share/doc/photoboothd/examples/cloudflared-config.yml.example"; do
        read -r path mode <<<"$entry"
        echo "$listing" | awk -v p="$path" -v m="$mode" '$6 == p && (m == "" || $1 == m) { found = 1 } END { exit !found }' ||
            fail "$path ${mode:+($mode) }is not in the package"
    done
    mkdir -p "$control" "$tree"
    dpkg-deb -e "$DEB" "$control"
    dpkg-deb -x "$DEB" "$tree"
    grep -qx /etc/photobooth/photobooth.toml "$control/conffiles" || fail "photobooth.toml is not a conffile"
    grep -q '^Depends:.*libc6' "$control/control" || fail "no libc6 dependency (\$auto)"
    grep -q '^Depends:.*adduser' "$control/control" || fail "no adduser dependency"
    local s
    for s in postinst prerm postrm; do
        [ -x "$control/$s" ] || fail "no $s"
        sh -n "$control/$s" || fail "$s: shell syntax"
        ! grep -q '#DEBHELPER#' "$control/$s" || fail "$s: #DEBHELPER# was not replaced"
    done
    for s in postinst prerm postrm; do
        # cargo-deb replaces every occurrence of the token, also one in a comment.
        [ "$(grep -c 'Automatically added by cargo-deb' "$control/$s")" = \
            "$(grep -c '^# Automatically added by cargo-deb$' "$control/$s")" ] ||
            fail "$s: a generated section landed inside a line (the token in a comment?)"
    done
    grep -q 'deb-systemd-helper.*enable' "$control/postinst" || fail "postinst does not enable the unit"
    # The user and the key must exist before the unit is started.
    local user_line start_line
    user_line=$(grep -n 'adduser --system' "$control/postinst" | head -n1 | cut -d: -f1)
    start_line=$(grep -n 'deb-systemd-invoke' "$control/postinst" | head -n1 | cut -d: -f1)
    [ "$user_line" -lt "$start_line" ] || fail "postinst starts the unit before it makes the user"
    grep -q 'deb-systemd-invoke' "$control/postinst" || fail "postinst does not start the unit"
    grep -q 'adduser --system' "$control/postinst" || fail "postinst does not make the user"
    grep -q 'deb-systemd-invoke stop' "$control/prerm" || fail "prerm does not stop the unit"
    cmp -s "$tree/usr/lib/systemd/system/photoboothd.service" "$UNIT" || fail "packaged unit differs from $UNIT"
    # The packaged units at their installed paths, with the real binary as ExecStart.
    make_root "$tree.root"
    cp -a "$tree/." "$tree.root/"
    verify_quiet --root="$tree.root" "$tree.root/usr/lib/systemd/system/photoboothd.service" ||
        fail "the packaged photoboothd.service does not verify"
    mkdir -p "$WORK/xdg"
    XDG_RUNTIME_DIR=$WORK/xdg verify_quiet --user "$tree/usr/lib/systemd/user/photobooth-kiosk.service" ||
        fail "the packaged kiosk unit does not verify"
    echo "needs glibc $(objdump -T "$tree/usr/bin/photoboothd" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1 | cut -d_ -f2)"
    echo "package contents as expected: $(echo "$listing" | grep -vc '/$') files"
}
step "dpkg-deb -c / -I and assertions" contents

# ---- 5. lintian (informational) ----------------------------------------------------------------
if [ "${PACKAGE_CHECK_LINTIAN:-0}" = 1 ]; then
    lint() {
        command -v lintian >/dev/null ||
            { apt-get update -qq && apt-get install -y -qq --no-install-recommends lintian >/dev/null; } ||
            { echo "lintian not installable, skipped"; return 0; }
        lintian --no-tag-display-limit "$DEB" || true
    }
    step "lintian (informational)" lint || true
fi

# ---- 6. install and purge on this machine (opt-in) ---------------------------------------------
if [ "${PACKAGE_CHECK_INSTALL:-0}" = 1 ]; then
    install_purge() {
        dpkg -i "$DEB" || fail "dpkg -i"
        getent passwd photoboothd | grep -q ':/var/lib/photoboothd:/usr/sbin/nologin$' || fail "user photoboothd"
        local g
        for g in gpio lp lpadmin video plugdev dialout; do
            id -nG photoboothd | tr ' ' '\n' | grep -qx "$g" || fail "photoboothd is not in $g"
        done
        [ "$(stat -c '%U:%G %a' /etc/photobooth/photobooth.toml)" = "root:photoboothd 640" ] || fail "config owner/mode"
        # The package never writes a key: it would shadow the one configured in photobooth.toml.
        [ ! -e /etc/photobooth/payme.key ] || fail "the package wrote /etc/photobooth/payme.key"
        /usr/bin/photoboothd --version
        /usr/bin/photoboothd check-config --config /etc/photobooth/photobooth.toml >/dev/null || fail "check-config"
        dpkg --purge photoboothd || fail "dpkg --purge"
        ! getent passwd photoboothd >/dev/null || fail "user photoboothd left after purge"
        [ ! -e /etc/photobooth/payme.key ] || fail "payme.key left after purge"
        echo "install and purge: OK"
    }
    step "dpkg -i / dpkg --purge" install_purge
fi
echo "package-check: OK ($DEB)"
