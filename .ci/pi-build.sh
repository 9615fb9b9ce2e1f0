#!/usr/bin/env bash
# Builds photoboothd for 64-bit Pi OS (aarch64-unknown-linux-gnu) without Docker and runs it under
# qemu-user: `photoboothd --version`, the Payme unit tests and the Payme sandbox integration test
# (which starts the aarch64 daemon as a child process, so qemu is registered with binfmt_misc).
# Linker and runner come from .cargo/config.toml. Run as root (it installs Debian packages).
#
#   bash .ci/pi-build.sh
#
# The aarch64 Rust standard library is the hard part: rustup's `target add` downloads it from
# static.rust-lang.org. The script takes the first of:
#   1. rustup's toolchain, if its aarch64 std is installed (`rustup target add $TARGET` worked);
#   2. Debian's rustc-web (bookworm-security, Rust >= 1.88) with its aarch64 std from the arm64
#      multiarch package libstd-rust-web-dev:arm64 (adds the arm64 architecture to dpkg);
#   3. neither: prints SKIPPED and exits 0 after checking everything else.
# PI_BUILD_TOOLCHAIN=rustup|debian forces one route (and fails instead of skipping);
# PI_BUILD_TOOLCHAIN=none checks the tools and configuration only, and skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
RUST_VERSION_NEEDED=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' Cargo.toml)
export CARGO_TERM_COLOR=never DEBIAN_FRONTEND=noninteractive
# A target directory of its own: another rustc's artifacts stay apart from the native build's, and
# a native `cargo build` running at the same time does not wait on this one's lock.
export CARGO_TARGET_DIR="${PI_BUILD_TARGET_DIR:-$PWD/target/pi}"
# qemu finds the aarch64 dynamic loader and libc here, also when started through binfmt_misc.
export QEMU_LD_PREFIX=$SYSROOT

declare -a TIMINGS=()
step() { # step NAME COMMAND...: run, time, remember
    local name=$1 start rc=0
    shift
    echo "== $name"
    start=$(date +%s)
    "$@" || rc=$?
    TIMINGS+=("$(printf '%-62s %4ss%s' "$name" $(($(date +%s) - start)) "$([ $rc = 0 ] || echo "  (exit $rc)")")")
    return $rc
}
timings() {
    echo "== timings"
    printf '  %s\n' "${TIMINGS[@]}"
}
trap timings EXIT

version_ge() { # version_ge A B: A >= B
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

apt_install() { # apt_install PKG...: only what is missing; one apt-get update per run
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} = 0 ] && return 0
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---- 1. Cross tools: linker, C compiler for the bundled SQLite, qemu --------------------------
step "install cross gcc, libc, qemu-user" \
    apt_install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-binfmt

check_tools() {
    # (Inside step's `||`, set -e is off: every check returns on its own.)
    aarch64-linux-gnu-gcc --version >/dev/null || return 1
    qemu-aarch64 --version >/dev/null || return 1
    echo "$(aarch64-linux-gnu-gcc --version | head -n1); $(qemu-aarch64 --version | head -n1)"
    [ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || { echo "no $SYSROOT/lib/ld-linux-aarch64.so.1"; return 1; }
    # .cargo/config.toml must name exactly these for the target (and nothing for the host).
    python3 - <<'PY'
import tomllib
c = tomllib.load(open(".cargo/config.toml", "rb"))
t = c["target"]["aarch64-unknown-linux-gnu"]
assert t["linker"] == "aarch64-linux-gnu-gcc", t
assert t["runner"] == "qemu-aarch64 -L /usr/aarch64-linux-gnu", t
a = c["target"]["armv7-unknown-linux-gnueabihf"]
assert a["linker"] == "arm-linux-gnueabihf-gcc" and a["runner"] == "qemu-arm -L /usr/arm-linux-gnueabihf", a
e = c["env"]
assert e["CC_aarch64_unknown_linux_gnu"] == "aarch64-linux-gnu-gcc", e
assert not any(k.startswith("x86_64") for k in c["target"]), "host settings in .cargo/config.toml"
assert not any("x86_64" in k or k in ("CC", "AR", "CFLAGS") for k in e), "host env in .cargo/config.toml"
print(".cargo/config.toml: linker, runner and CC/AR for aarch64 and armv7; nothing for the host")
PY
}
step "check linker, qemu and .cargo/config.toml" check_tools

# ---- 2. A Rust toolchain with the aarch64 standard library ---------------------------------
CARGO_BIN=""
has_target_std() { # has_target_std RUSTC
    local dir
    dir=$("$1" --print target-libdir --target "$TARGET" 2>/dev/null) || return 1
    compgen -G "$dir/libstd-*.rlib" >/dev/null
}

use_rustup() {
    if has_target_std rustc; then
        CARGO_BIN=cargo
        echo "rustup toolchain $(rustc -V) has the $TARGET standard library"
        return 0
    fi
    echo "rustup toolchain $(rustc -V 2>/dev/null || echo '(none)') has no $TARGET standard library" \
        "(installed targets: $(rustup target list --installed 2>/dev/null | tr '\n' ' '))"
    return 1
}

use_debian() {
    # Debian 12's rustc (1.63) is too old; rustc-web, kept current in bookworm-security for the
    # browsers, is new enough and ships its std for every Debian architecture.
    local candidate
    candidate=$(apt-cache policy rustc-web 2>/dev/null | sed -n 's/^ *Candidate: *//p' | sed 's/+.*//')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        apt-get update -qq && APT_UPDATED=1
        candidate=$(apt-cache policy rustc-web 2>/dev/null | sed -n 's/^ *Candidate: *//p' | sed 's/+.*//')
    fi
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ] || ! version_ge "$candidate" "$RUST_VERSION_NEEDED"; then
        echo "Debian rustc-web candidate '${candidate:-none}' is missing or older than $RUST_VERSION_NEEDED"
        return 1
    fi
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        APT_UPDATED=""
    fi
    apt_install rustc-web cargo-web "libstd-rust-web-dev:arm64" || return 1
    # The arm64 std must be exactly the host rustc-web's version.
    local host arm
    host=$(dpkg-query -W -f='${Version}' rustc-web)
    arm=$(dpkg-query -W -f='${Version}' libstd-rust-web-dev:arm64)
    [ "$host" = "$arm" ] || { echo "rustc-web $host but libstd-rust-web-dev:arm64 $arm"; return 1; }
    # rustup's proxies come first on PATH: point cargo at Debian's compiler explicitly.
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    has_target_std "$RUSTC" || { echo "/usr/bin/rustc does not see an $TARGET std"; return 1; }
    CARGO_BIN=/usr/bin/cargo
    echo "Debian $($RUSTC -V) with libstd-rust-web-dev:arm64 $arm"
}

skip() {
    local why="rustup target add $TARGET needs network access to static.rust-lang.org, and Debian's
##  rustc-web with libstd-rust-web-dev:arm64 (Rust >= $RUST_VERSION_NEEDED) could not be installed."
    [ "${PI_BUILD_TOOLCHAIN:-auto}" = none ] && why="PI_BUILD_TOOLCHAIN=none: no toolchain was looked for."
    cat <<EOF

############################################################################################
##  SKIPPED: no aarch64 Rust standard library on this machine.
##  $why
##  Checked and fine: aarch64-linux-gnu-gcc, qemu-aarch64, $SYSROOT, .cargo/config.toml.
##  On a machine with the target std, this script builds --release --target $TARGET
##  and runs photoboothd --version and the Payme tests under qemu-aarch64.
############################################################################################

EOF
    exit 0
}

find_toolchain() {
    case "${PI_BUILD_TOOLCHAIN:-auto}" in
    rustup) use_rustup ;;
    debian) use_debian ;;
    auto) use_rustup || use_debian ;;
    none) echo "PI_BUILD_TOOLCHAIN=none: not looking for one"; return 1 ;;
    *) echo "PI_BUILD_TOOLCHAIN must be auto, rustup, debian or none"; return 2 ;;
    esac
}
if ! step "find a Rust toolchain with the $TARGET std" find_toolchain; then
    case "${PI_BUILD_TOOLCHAIN:-auto}" in auto | none) skip ;; *) exit 1 ;; esac
fi

# ---- 3. Which aarch64 glibc qemu runs the binaries with -------------------------------------
# .cargo/config.toml's runner uses the cross sysroot /usr/aarch64-linux-gnu (libc6-arm64-cross).
# Once the arm64 multiarch libc (libc6:arm64) is installed too, as the Debian route does, the
# cross ld.so reads the host's /etc/ld.so.cache and loads /lib/aarch64-linux-gnu/libc.so.6, a
# different build of glibc than itself: the first pthread_create then spins forever (seen with
# 2.36-8cross1 against 2.36-9+deb12u14). Then run everything against the multiarch glibc alone.
choose_loader() {
    local cross multi
    cross=$(dpkg-query -W -f='${Version}' libc6-arm64-cross 2>/dev/null || true)
    multi=$(dpkg-query -W -f='${Version}' libc6:arm64 2>/dev/null || true)
    if [ -n "$multi" ] && [ -e /lib/ld-linux-aarch64.so.1 ]; then
        QEMU_LD_PREFIX=/
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /"
        echo "libc6:arm64 $multi is installed (libc6-arm64-cross ${cross:-none}): running with qemu-aarch64 -L /"
    else
        echo "running with qemu-aarch64 -L $SYSROOT (libc6-arm64-cross $cross), as .cargo/config.toml says"
    fi
}
step "choose the aarch64 glibc for qemu" choose_loader

# ---- 4. binfmt_misc: the integration tests exec the aarch64 daemon from the aarch64 test -----
register_binfmt() {
    local dir=/proc/sys/fs/binfmt_misc
    [ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir" 2>/dev/null || return 1
    if [ ! -e "$dir/qemu-aarch64" ]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >"$dir/register" 2>/dev/null || return 1
    fi
    grep -q enabled "$dir/qemu-aarch64"
}
BINFMT=yes
step "register qemu-aarch64 with binfmt_misc" register_binfmt || BINFMT=no

# ---- 5. Build and run --------------------------------------------------------------------------
step "cargo build --release --target $TARGET" \
    "$CARGO_BIN" build --release --locked --target "$TARGET"

BIN="$CARGO_TARGET_DIR/$TARGET/release/photoboothd"
inspect() {
    [ -x "$BIN" ] || return 1
    file "$BIN" 2>/dev/null || true
    # The glibc floor of the binary: the newest GLIBC_x.y symbol version it needs.
    echo "needs glibc $(aarch64-linux-gnu-objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n1 | cut -d_ -f2)"
    # The size budget for the Pi (issue 17: at most 8 MiB); printed, so every CI run records it.
    echo "binary size: $(stat -c %s "$BIN") bytes (budget 8388608 = 8 MiB)"
    # Through the runner, as cargo would.
    qemu-aarch64 -L "$QEMU_LD_PREFIX" "$BIN" --version
}
step "photoboothd --version under qemu-aarch64" inspect

step "payme unit tests under qemu (cargo test --lib payme)" \
    "$CARGO_BIN" test --release --locked --target "$TARGET" --lib -- payme

if [ "$BINFMT" = yes ]; then
    step "payme_sandbox integration test under qemu" \
        "$CARGO_BIN" test --release --locked --target "$TARGET" --test payme_sandbox
else
    echo "NOT RUN: tests/payme_sandbox.rs starts the aarch64 daemon as a child process, which needs" \
        "qemu-aarch64 registered in binfmt_misc; this machine does not allow registering it."
fi
# The arm64 .deb from the binary just built (cargo-deb strips it with the target's strip).
arm64_deb() {
    if ! cargo deb --version >/dev/null 2>&1; then
        echo "cargo-deb is not installed (.ci/package-check.sh installs it): no .deb"
        return 0
    fi
    local out deb tree
    # cargo-deb writes target/$TARGET/debian/X.deb and links or copies it to target/debian/; once
    # (not reproduced since) the copy was read empty. Start from neither and read the first one.
    rm -f "$CARGO_TARGET_DIR"/debian/photoboothd_*_arm64.deb "$CARGO_TARGET_DIR/$TARGET"/debian/photoboothd_*_arm64.deb
    out=$(cargo deb --no-build --locked --target "$TARGET" 2>&1) || { echo "$out"; return 1; }
    deb=$(ls "$CARGO_TARGET_DIR/$TARGET"/debian/photoboothd_*_arm64.deb 2>/dev/null | tail -n1)
    [ -n "$deb" ] || deb=$(echo "$out" | grep '\.deb$' | tail -n1)
    [ -s "$deb" ] || { echo "$out"; return 1; }
    dpkg-deb -f "$deb" Package Version Architecture Depends
    tree=$(mktemp -d)
    dpkg-deb -x "$deb" "$tree"
    qemu-aarch64 -L "$QEMU_LD_PREFIX" "$tree/usr/bin/photoboothd" --version || { rm -rf "$tree"; return 1; }
    echo "the .deb's binary: $(stat -c %s "$tree/usr/bin/photoboothd") bytes (budget 8388608 = 8 MiB)"
    rm -rf "$tree"
    ls -l "$deb"
}
step "cargo deb --no-build --target $TARGET" arm64_deb

echo "pi-build: OK"
