#!/usr/bin/env bash
# CheckPerformTransaction load test with wrk against a release photoboothd on loopback.
#
#   cargo build --release
#   scripts/bench/payme_wrk.sh                 # 30 s, 16 connections, 2 wrk threads
#   DURATION=60s CONNECTIONS=16 scripts/bench/payme_wrk.sh
#
# Unless BARE=0, the same wrk load first runs against benches/bare_axum.rs (built here with
# `cargo bench --bench bare_axum --no-run`), a bare axum server on the daemon's runtime settings
# answering the daemon's own reply with no auth, parsing or SQLite: the HTTP stack's ceiling; then
# against the same server doing a Check's store read per request (BARE_SQLITE=1). The last lines
# give the daemon's rate as a share of each, from the same run, and each server's CPU time per
# request (user and system), which a busy machine moves much less than the rates.
#
# The daemon runs at its default log level (RUST_LOG unset -> info) with stderr to /dev/null,
# unless BENCH_RUST_LOG is set (e.g. BENCH_RUST_LOG=warn, for a comparison only).
# WRK_CHECK=0 skips the per-reply check in the Lua script.
# Prints the idle RSS, wrk's report, VmRSS sampled every 0.5 s during the run, and RSS after.
#
# ROUNDS=N (N > 0) measures the share differently: the bare server and the daemon run side by side,
# and wrk alternates between them for N rounds of DURATION each (bare first in odd rounds, the
# daemon first in even ones). A machine that slows down for a while then slows both servers of a
# round alike, where the sequential runs above can put a slow minute on one server only. It prints
# each round's share, their median, and the share of all requests over all rounds.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${PHOTOBOOTHD_BIN:-$root/target/release/photoboothd}"
duration="${DURATION:-30s}"
connections="${CONNECTIONS:-16}"
threads="${THREADS:-2}"
rounds="${ROUNDS:-0}"
case "$rounds" in ''|*[!0-9]*) echo "ROUNDS must be a whole number, not '$rounds'" >&2; exit 1 ;; esac
key='Bench:KEY%&?@#!aBcDeFgHiJkLmNoPqRsT'

[ -x "$bin" ] || { echo "no $bin: run 'cargo build --release' first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found: apt-get update && apt-get install -y wrk" >&2; exit 1; }

tmp="$(mktemp -d /tmp/photoboothd-wrk.XXXXXX)"
pid=""
sampler=""
bare_pid=""
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; fi
  if [ -n "$bare_pid" ]; then kill "$bare_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cat > "$tmp/photobooth.toml" <<TOML
[booth]
name = "Bench Booth"
price_per_copy = 20000
max_copies = 10
order_ttl_s = 600
data_dir = "$tmp/data"

[http]
kiosk_listen = "127.0.0.1:0"
webhook_listen = "127.0.0.1:0"

[payme]
merchant_id = "587f72c72cac0d162c722ae2"
key = "$key"
checkout_base = "https://test.paycom.uz"
account_field = "order_id"

[printer]
backend = "file"
TOML

if [ -n "${BENCH_RUST_LOG:-}" ]; then
  env -u PAYME_KEY -u CREDENTIALS_DIRECTORY -u STATE_DIRECTORY RUST_LOG="$BENCH_RUST_LOG" \
    "$bin" run --config "$tmp/photobooth.toml" >/dev/null 2>&1 &
  log_level="$BENCH_RUST_LOG (RUST_LOG)"
else
  env -u RUST_LOG -u PAYME_KEY -u CREDENTIALS_DIRECTORY -u STATE_DIRECTORY \
    "$bin" run --config "$tmp/photobooth.toml" >/dev/null 2>&1 &
  log_level="info (RUST_LOG unset, the default)"
fi
pid=$!

run_file="$tmp/data/photoboothd.run.json"
for _ in $(seq 1 2000); do # at most 20 s
  [ -s "$run_file" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "photoboothd exited at start" >&2; exit 1; }
  sleep 0.01
done
[ -s "$run_file" ] || { echo "photoboothd did not become ready in 20 s" >&2; exit 1; }
kiosk="$(sed -E 's/.*"kiosk":"([^"]+)".*/\1/' "$run_file")"
webhook="$(sed -E 's/.*"webhook":"([^"]+)".*/\1/' "$run_file")"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$pid/status"; }
thr() { awk '/^Threads/ {print $2}' "/proc/$pid/status"; }

sleep 1
echo "daemon pid $pid, kiosk $kiosk, webhook $webhook, log level $log_level, stderr -> /dev/null"
echo "idle: VmRSS $(rss) KiB, VmHWM $(hwm) KiB, threads $(thr)"

order="$(curl -sS -X POST "http://$kiosk/api/generate-qr" -H 'content-type: application/json' -d '{"copies":1}')"
order_id="$(printf '%s' "$order" | sed -E 's/.*"order_id":([0-9]+).*/\1/')"
amount="$(printf '%s' "$order" | sed -E 's/.*"amount_tiyin":([0-9]+).*/\1/')"
echo "order $order_id, amount_tiyin $amount"
echo "after one kiosk request: VmRSS $(rss) KiB"

export PAYME_AUTH="Basic $(printf 'Paycom:%s' "$key" | base64 -w0)"
export PAYME_BODY="{\"method\":\"CheckPerformTransaction\",\"params\":{\"amount\":$amount,\"account\":{\"order_id\":\"$order_id\"}},\"id\":1}"
probe="$(curl -sS -X POST "http://$webhook/payme" -H "Authorization: $PAYME_AUTH" -H 'content-type: text/json' -d "$PAYME_BODY")"
echo "probe reply: $probe"
case "$probe" in *'"allow":true'*) ;; *) echo "CheckPerformTransaction is not allowed; aborting" >&2; exit 1 ;; esac

secs="${duration%s}"
hz="$(getconf CLK_TCK)"
# A process's CPU time so far, in clock ticks: user and system.
proc_cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }
# The server's CPU time per request over a wrk run, from two proc_cpu samples and wrk's rate: the
# work a request costs, which contention on this machine changes far less than the rate.
per_request() { # label "user0 sys0" "user1 sys1" rate
  awk -v l="$1" -v a="$2" -v b="$3" -v r="$4" -v s="$secs" -v hz="$hz" 'BEGIN {
    split(a, x, " "); split(b, y, " "); n = r * s; if (n < 1) n = 1
    u = (y[1] - x[1]) * 1e6 / hz / n; k = (y[2] - x[2]) * 1e6 / hz / n
    printf "%s: %.1f us of CPU per request (user %.1f, system %.1f)\n", l, u + k, u, k }'
}

# One anchor run: benches/bare_axum.rs with extra environment ($2), under the same wrk load;
# prints its wrk report and leaves the rate in $tmp/$1.rate.
# Starts benches/bare_axum.rs with extra environment ($2), its output in $tmp/$1.out; sets
# bare_pid (which cleanup stops) and bare_addr.
start_bare() {
  local name="$1" extra="$2"
  env $extra BARE_REPLY="$probe" "$bare_bin" > "$tmp/$name.out" 2>&1 &
  bare_pid=$!
  for _ in $(seq 1 500); do grep -q '^listening' "$tmp/$name.out" && break; sleep 0.01; done
  bare_addr="$(sed -n 's/^listening //p' "$tmp/$name.out")"
  [ -n "$bare_addr" ] || { echo "bare_axum did not start: $(cat "$tmp/$name.out")" >&2; exit 1; }
}

stop_bare() {
  kill "$bare_pid" 2>/dev/null || true
  wait "$bare_pid" 2>/dev/null || true
  bare_pid=""
}

run_bare() {
  local name="$1" extra="$2"
  start_bare "$name" "$extra"
  echo "== anchor: $name at $bare_addr"
  local c0 c1
  c0="$(proc_cpu "$bare_pid")"
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$here/check_perform.lua" "http://$bare_addr/payme" \
    | tee "$tmp/$name.wrk"
  c1="$(proc_cpu "$bare_pid")"
  stop_bare
  sed -n 's/^req_per_s //p' "$tmp/$name.wrk" > "$tmp/$name.rate"
  per_request "$name" "$c0" "$c1" "$(cat "$tmp/$name.rate")" > "$tmp/$name.cpu"
}

bare_rate=""
sqlite_rate=""
if [ "${BARE:-1}" != 0 ] || [ "$rounds" -gt 0 ]; then
  (cd "$root" && cargo bench --bench bare_axum --no-run --message-format=json 2>/dev/null) \
    | sed -n 's/.*"executable":"\([^"]*bare_axum[^"]*\)".*/\1/p' | tail -1 > "$tmp/bare_bin"
  bare_bin="$(cat "$tmp/bare_bin")"
  [ -x "$bare_bin" ] || { echo "could not build benches/bare_axum.rs" >&2; exit 1; }
fi

# One wrk run against $2 (a URL), report in $tmp/$1.wrk; prints the rate.
wrk_rate() {
  wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$here/check_perform.lua" "$2" > "$tmp/$1.wrk"
  grep -E '^ +(Latency|Req/Sec) +[0-9]|^ +99%|^rpc_errors|^socket_errors' "$tmp/$1.wrk" | sed "s/^/  $1: /" >&2
  sed -n 's/^req_per_s //p' "$tmp/$1.wrk"
}

if [ "$rounds" -gt 0 ]; then
  start_bare bare ""
  echo "== $rounds interleaved rounds of $duration each: bare axum at $bare_addr, photoboothd at $webhook"
  echo "wrk -t$threads -c$connections -d$duration --latency -s $here/check_perform.lua <server>/payme"
  # The daemon's thread count every 0.5 s over the rounds (the issue asks for it bounded).
  ( while kill -0 "$pid" 2>/dev/null; do thr; sleep 0.5; done ) > "$tmp/threads" 2>/dev/null &
  sampler=$!
  bc0="$(proc_cpu "$bare_pid")"; dc0="$(proc_cpu "$pid")"
  : > "$tmp/rounds"
  bad=0
  for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then
      b="$(wrk_rate bare "http://$bare_addr/payme")"; d="$(wrk_rate daemon "http://$webhook/payme")"
    else
      d="$(wrk_rate daemon "http://$webhook/payme")"; b="$(wrk_rate bare "http://$bare_addr/payme")"
    fi
    for f in bare daemon; do
      e="$(sed -n 's/^\(rpc\|socket\)_errors //p' "$tmp/$f.wrk" | awk '{s += $1} END {print s + 0}')"
      bad=$((bad + e))
    done
    echo "$r $b $d" >> "$tmp/rounds"
    awk -v r="$r" -v b="$b" -v d="$d" 'BEGIN {
      printf "round %d: bare axum %.0f req/s, photoboothd %.0f req/s: %.1f%%\n", r, b, d, 100 * d / b }'
  done
  bc1="$(proc_cpu "$bare_pid")"; dc1="$(proc_cpu "$pid")"
  stop_bare
  # CPU per request over all rounds: the rates' mean times the rounds stands in for the count.
  mean() { awk -v c="$1" '{s += $c} END {print s / NR}' "$tmp/rounds"; }
  secs=$((secs * rounds))
  per_request "bare axum (all rounds)" "$bc0" "$bc1" "$(mean 2)"
  per_request "photoboothd (all rounds)" "$dc0" "$dc1" "$(mean 3)"
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  sampler=""
  echo "photoboothd over the rounds: at most $(sort -n "$tmp/threads" | tail -1) threads; after: VmRSS $(rss) KiB, VmHWM $(hwm) KiB"
  echo "wrong replies or socket errors over all rounds (both servers): $bad"
  awk '{ print 100 * $3 / $2 }' "$tmp/rounds" | sort -g | awk -v n="$rounds" '
    { v[NR] = $1 } END {
      m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      printf "interleaved: median of %d rounds %.1f%% of bare axum (lowest %.1f%%, highest %.1f%%)\n", n, m, v[1], v[n] }'
  awk '{ b += $2; d += $3 } END {
    printf "interleaved: all rounds together photoboothd %.0f req/s, bare axum %.0f req/s: %.1f%%\n",
      d / NR, b / NR, 100 * d / b }' "$tmp/rounds"
  exit 0
fi

if [ "${BARE:-1}" != 0 ]; then
  # The HTTP stack alone (same reply, no auth/parse/SQLite), then with a Check's store read added.
  run_bare "bare axum" ""
  bare_rate="$(cat "$tmp/bare axum.rate")"
  run_bare "bare axum + SQLite lookup" "BARE_SQLITE=1"
  sqlite_rate="$(cat "$tmp/bare axum + SQLite lookup.rate")"
  echo "== photoboothd"
fi

# VmRSS every 0.5 s while wrk runs; bounded by the wrk duration plus a margin.
samples=$(( (secs + 5) * 2 ))
(
  for _ in $(seq 1 "$samples"); do
    kill -0 "$pid" 2>/dev/null || break
    printf '%s %s %s\n' "$(date +%s.%N)" "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")" \
      "$(awk '/^Threads/ {print $2}' "/proc/$pid/status")"
    sleep 0.5
  done
) > "$tmp/rss.txt" &
sampler=$!

# CPU split during the wrk run: the daemon, wrk, and everything else on the machine (jiffies).
cpu_busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
cpu_total() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
daemon_cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
# user+sys of this shell's reaped children, in jiffies; must run in this shell (`times`), not in $(...)
children_cpu() {
  times > "$tmp/times"
  tail -1 "$tmp/times" | awk '{split($1,a,"m"); split($2,b,"m"); printf "%d\n", (a[1]*60+a[2]+b[1]*60+b[2])*100}'
}
children_cpu > "$tmp/c0"
b0=$(cpu_busy); t0=$(cpu_total); d0=$(daemon_cpu); p0="$(proc_cpu "$pid")"

echo "wrk -t$threads -c$connections -d$duration --latency -s $here/check_perform.lua http://$webhook/payme"
wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$here/check_perform.lua" "http://$webhook/payme" \
  | tee "$tmp/daemon.wrk"

b1=$(cpu_busy); t1=$(cpu_total); d1=$(daemon_cpu); p1="$(proc_cpu "$pid")"
children_cpu > "$tmp/c1"
c0=$(cat "$tmp/c0"); c1=$(cat "$tmp/c1")
awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v d=$((d1 - d0)) -v w=$((c1 - c0)) -v n="$(nproc)" 'BEGIN {
  if (t < 1) t = 1
  printf "CPU during the run (100%% = one core, %d cores): daemon %.0f%%, wrk %.0f%%, other processes %.0f%%\n",
    n, 100 * n * d / t, 100 * n * w / t, 100 * n * (b - d - w) / t }'

kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=""
daemon_rate="$(sed -n 's/^req_per_s //p' "$tmp/daemon.wrk")"
[ -z "$bare_rate" ] || cat "$tmp/bare axum.cpu" "$tmp/bare axum + SQLite lookup.cpu"
per_request photoboothd "$p0" "$p1" "$daemon_rate"
if [ -n "$bare_rate" ]; then
  awk -v d="$daemon_rate" -v b="$bare_rate" -v q="$sqlite_rate" 'BEGIN {
    printf "same run: photoboothd %.0f req/s, bare axum %.0f req/s: %.1f%% of the ceiling\n", d, b, 100 * d / b
    printf "same run: bare axum + SQLite lookup %.0f req/s (%.1f%% of bare axum); photoboothd at %.1f%% of it\n", q, 100 * q / b, 100 * d / q }'
fi
echo "VmRSS during the run (KiB): min/median/max $(awk '{print $2}' "$tmp/rss.txt" | sort -n | awk '{a[NR]=$1} END {print a[1] "/" a[int((NR+1)/2)] "/" a[NR] " over " NR " samples"}')"
echo "threads during the run: max $(awk '{print $3}' "$tmp/rss.txt" | sort -n | tail -1)"
echo "VmRSS samples (KiB, every 0.5 s): $(awk '{printf "%s ", $2}' "$tmp/rss.txt")"
echo "right after the run: VmRSS $(rss) KiB, VmHWM $(hwm) KiB, threads $(thr)"
sleep 15
echo "15 s after the run: VmRSS $(rss) KiB, VmHWM $(hwm) KiB, threads $(thr)"

# SIGTERM, then reap; SIGKILL if it has not exited within 10 s.
kill -TERM "$pid"
for _ in $(seq 1 1000); do
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  [ -z "$state" ] || [ "$state" = Z ] && break
  sleep 0.01
done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=""
