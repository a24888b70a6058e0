#!/usr/bin/env bash
# Where the broker's time goes at saturation (loopback, bounded, ~1 min): the production broker on
# Redis (AOF always), BeginTask + CompleteTask at concurrency 16 from the bench load client, and
#   1. dotnet-counters over one window: the broker's allocation rate and GC → bytes allocated per mint;
#   2. dotnet-trace (thread-stack sampling, ~100 Hz) over a second window → the broker's busy samples by component.
# Usage: bench/profile.sh   (after a build of bench/CredBroker.Bench in Release; run.sh does one)
# Env: BENCH_SECONDS (default 10), BENCH_BROKER_ARGS (extra broker arguments),
#      BENCH_SERVER_DLL (another broker build to profile, e.g. an earlier commit's, for a before/after split).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${BENCH_SECONDS:-10}
source bench/lib.sh
bench_init profile
tools="$root/.artifacts/tools"

[ -x "$tools/dotnet-counters" ] || timeout 120 dotnet tool install dotnet-counters --version 10.0.750501 --tool-path "$tools" >/dev/null
[ -x "$tools/dotnet-trace" ] || timeout 120 dotnet tool install dotnet-trace --version 10.0.750501 --tool-path "$tools" >/dev/null
bench_dll="$root/bench/CredBroker.Bench/bin/Release/net10.0/CredBroker.Bench.dll"
server_dll=${BENCH_SERVER_DLL:-"$root/src/CredBroker.Server/bin/Release/net10.0/CredBroker.Server.dll"}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --dir "$work" --appendonly yes --appendfsync always >/dev/null 2>&1 &
redis_pid=$!; pids+=("$redis_pid")
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.05; done
http_port=$(free_port); agent_port=$(free_port); operator_port=$(free_port)
dotnet "$bench_dll" mint-setup --dir "$work/broker" --redis "127.0.0.1:$redis_port" --http "$http_port" --agent "$agent_port" --operator "$operator_port" >/dev/null
mapfile -t broker_args <"$work/broker/broker.args"
# shellcheck disable=SC2206
broker_args+=(${BENCH_BROKER_ARGS:-})
dotnet "$server_dll" "${broker_args[@]}" >"$work/broker.log" 2>&1 &
broker_pid=$!; pids+=("$broker_pid")
until curl -fs -o /dev/null "http://127.0.0.1:$http_port/readyz"; do kill -0 "$broker_pid"; sleep 0.1; done
load() {
  timeout $((seconds + 60)) dotnet "$bench_dll" mint-load --target "http://127.0.0.1:$agent_port" --credential-file "$work/broker/credential.jwt" \
    --concurrency 16 --warmup 2 --seconds "$seconds" --watch "broker=$broker_pid" --watch "redis=$redis_pid"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== window 1: allocations (dotnet-counters)"
"$tools/dotnet-counters" collect -p "$broker_pid" --counters System.Runtime --format csv --refresh-interval 1 \
  -o "$work/counters.csv" --duration "00:00:$(printf '%02d' $((seconds + 2)))" >/dev/null 2>&1 &
counters_pid=$!; pids+=("$counters_pid")
result=$(load); echo "$result"
wait "$counters_pid" || true
rps=$(sed 's/.* rps=\([0-9.]*\).*/\1/' <<<"$result")
# Allocation rate per second, averaged over the samples taken while the load ran (the busiest ones).
awk -F, -v rps="$rps" 'tolower($0) ~ /alloc/ && tolower($0) ~ /rate|allocated/ { v = $NF + 0; if (v > 0) { n++; sum += v; if (v > max) max = v } }
  END { if (n) printf "PROFILE allocation_bytes_per_s=%.0f bytes_per_mint=%.0f (BeginTask + CompleteTask, whole process)\n", sum / n, sum / n / rps;
        else print "PROFILE no allocation counter found" }' "$work/counters.csv"
grep -i "gc.*count\|gen.0\|time.in.gc\|gc-time" "$work/counters.csv" | tail -3 || true

echo "== window 2: CPU samples (dotnet-trace)"
"$tools/dotnet-trace" collect -p "$broker_pid" --profile dotnet-sampled-thread-time --format Speedscope -o "$work/broker.nettrace" \
  --duration "00:00:00:$(printf '%02d' $((seconds + 2)))" >"$work/trace.log" 2>&1 &
trace_pid=$!; pids+=("$trace_pid")
load
wait "$trace_pid" || true
[ -f "$work/broker.speedscope.json" ] || { cat "$work/trace.log"; exit 1; }
/usr/bin/python3 "$root/bench/speedscope_summary.py" "$work/broker.speedscope.json" ${BENCH_LEAVES:+--leaves}
[ -n "${BENCH_KEEP_TRACE:-}" ] && cp "$work/broker.speedscope.json" "$BENCH_KEEP_TRACE"
