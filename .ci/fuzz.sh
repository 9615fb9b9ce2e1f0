#!/usr/bin/env bash
# Bounded fuzzing run for CI (see docs/fuzzing.md for the targets and the long-running modes).
#
#   bash .ci/fuzz.sh                           # every target, 60 s each
#   FUZZ_SECONDS=20 bash .ci/fuzz.sh           # a slow or busy machine
#   FUZZ_TARGETS="payme_request" bash .ci/fuzz.sh
#
# For each target it first replays the committed reproducers (fuzz/regressions/<target>/) and the
# seed corpus (fuzz/corpus/<target>/), then fuzzes for FUZZ_SECONDS with a scratch corpus, so the
# run never adds files to the repository. A crash leaves its input in fuzz/artifacts/<target>/ and
# prints it as hex; the script then exits 1.
#
# Needs a nightly toolchain (cargo-fuzz uses -Zsanitizer=address): without one it says so and exits
# 0. It installs cargo-fuzz from crates.io if missing; that first install compiles for a few minutes,
# and the first instrumented build of the daemon's dependency tree takes several more.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-payme_request config escpos}"
export CARGO_TERM_COLOR=never

now() { date +%s; }
t_start="$(now)"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: no nightly toolchain (cargo +nightly is unavailable); cargo-fuzz needs one"
  exit 0
fi
echo "fuzz: $(cargo +nightly --version), $(rustc +nightly --version)"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io (compiles for a few minutes)"
  t0="$(now)"
  if ! cargo install cargo-fuzz --locked; then
    echo "fuzz: FAILED to install cargo-fuzz"
    exit 1
  fi
  echo "fuzz: cargo-fuzz installed in $(( $(now) - t0 )) s"
fi
echo "fuzz: $(cargo fuzz --version)"

# -a: debug assertions and overflow checks on, so arithmetic overflow on the money path is a crash.
echo "fuzz: building every target (instrumented, first build takes several minutes)"
t0="$(now)"
if ! (cd fuzz && cargo +nightly fuzz build -a); then
  echo "fuzz: FAILED to build the fuzz targets"
  exit 1
fi
build_s=$(( $(now) - t0 ))
echo "fuzz: built in ${build_s} s"

dict_for() {
  case "$1" in
    payme_request) echo "-dict=$root/fuzz/dicts/payme.dict" ;;
    config) echo "-dict=$root/fuzz/dicts/config.dict" ;;
    *) echo "" ;;
  esac
}

failed=0
summary=()
for target in $targets; do
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/photoboothd-fuzz-$target.XXXXXX")"
  mkdir -p "fuzz/artifacts/$target" "fuzz/regressions/$target" "fuzz/corpus/$target"
  dict="$(dict_for "$target")"

  # 1. Replay: every committed reproducer and seed once (-runs=0 runs the corpus and stops).
  t0="$(now)"
  (cd fuzz && cargo +nightly fuzz run -a "$target" "$scratch" "$root/fuzz/regressions/$target" \
      "$root/fuzz/corpus/$target" -- -runs=0 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$root/fuzz/artifacts/$target/") > "$scratch.replay.log" 2>&1
  replay_rc=$?
  replay_s=$(( $(now) - t0 ))

  # 2. Fuzz for a bounded time from the seeds, writing new inputs to the scratch corpus only.
  fuzz_rc=0
  fuzz_s=0
  if [ "$replay_rc" -eq 0 ]; then
    t0="$(now)"
    # shellcheck disable=SC2086
    (cd fuzz && cargo +nightly fuzz run -a "$target" "$scratch" "$root/fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$root/fuzz/artifacts/$target/" $dict) > "$scratch.fuzz.log" 2>&1
    fuzz_rc=$?
    fuzz_s=$(( $(now) - t0 ))
  fi

  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$scratch.fuzz.log" 2>/dev/null | grep -Eo '[0-9]+$' || true)"
  cov="$(grep -Eo 'cov: [0-9]+' "$scratch.fuzz.log" 2>/dev/null | tail -1 | grep -Eo '[0-9]+' || true)"
  if [ "$replay_rc" -ne 0 ] || [ "$fuzz_rc" -ne 0 ]; then
    failed=1
    status="FAILED"
    log="$scratch.fuzz.log"
    [ "$replay_rc" -ne 0 ] && log="$scratch.replay.log"
    echo "fuzz: $target FAILED (replay rc=$replay_rc, fuzz rc=$fuzz_rc); the last lines of its log:"
    tail -n 60 "$log"
    for crash in $(grep -Eo "$root/fuzz/artifacts/$target/[^ ]+" "$log" | sort -u); do
      [ -f "$crash" ] || continue
      echo "fuzz: reproducer $crash ($(wc -c < "$crash") bytes), first 4 KiB as hex:"
      head -c 4096 "$crash" | od -A x -t x1z -v
      echo "fuzz: replay with: cd fuzz && cargo +nightly fuzz run -a $target $crash"
    done
  else
    status="ok"
  fi
  summary+=("$(printf '%-14s %-7s replay %4ss  fuzz %4ss  runs %-10s cov %s' \
    "$target" "$status" "$replay_s" "$fuzz_s" "${runs:-?}" "${cov:-?}")")
  rm -rf "$scratch" "$scratch.replay.log" "$scratch.fuzz.log"
done

echo "fuzz: summary (build ${build_s} s, total $(( $(now) - t_start )) s, ${seconds} s per target)"
for line in "${summary[@]}"; do
  echo "  $line"
done
exit "$failed"
