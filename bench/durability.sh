#!/usr/bin/env bash
# What each durability setting costs, measured side by side in one run (docs/operations.md quotes it):
# the same broker build, agent and load client (BeginTask + CompleteTask at one concurrency) against
#   always         Redis primary with appendonly yes, appendfsync always (the production default)
#   everysec       the same Redis with appendfsync everysec (a crash can lose up to ~1 s of acknowledged writes)
#   always+WAIT    always, plus one replica (also AOF always) and CredBroker:Redis:WaitReplicas=1:
#                  completions, revocations and quarantines wait for the replica's acknowledgement
#   everysec+WAIT  everysec on both, with WAIT (survives the loss of one machine, not of both at once)
#   always+WAIT+all  always, WaitReplicas=1 and WaitForLeaseWrites=true: every lease write and audit batch waits too
#                  (the mint path survives a failover whole)
# plus redis-benchmark SET on the primary under each fsync setting (the disk's durable-write limit).
# Usage: bench/durability.sh [--write docs/operations.md]   Env: BENCH_SECONDS (default 8), BENCH_CONCURRENCY (default 16).
# Loopback only, bounded: every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
write=""
[ "${1:-}" = "--write" ] && write="${2:?--write needs a path}"
seconds=${BENCH_SECONDS:-8}
c=${BENCH_CONCURRENCY:-16}
source bench/lib.sh
bench_init durability

bench_build
server_dll="$root/src/CredBroker.Server/bin/Release/net10.0/CredBroker.Server.dll"

start_redis() { # name, port, extra args...
  local name=$1 port=$2; shift 2
  mkdir -p "$work/$name"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --dir "$work/$name" --appendonly yes --appendfsync always --daemonize no "$@" >"$work/$name.log" 2>&1 &
  pids+=("$!")
  eval "${name}_pid=$!"
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
}
primary=$(free_port); replica=$(free_port)
start_redis primary "$primary"
start_redis replica "$replica" --replicaof 127.0.0.1 "$primary"
until redis-cli -p "$replica" info replication | grep -q 'master_link_status:up'; do sleep 0.1; done
fsync() { redis-cli -p "$primary" config set appendfsync "$1" >/dev/null; redis-cli -p "$replica" config set appendfsync "$1" >/dev/null; }

results="$work/results.txt"
for mode in always everysec; do
  fsync "$mode"
  rps=$(redis_bench "$primary" "$c" 20000 -t set)
  printf 'SET\t%s\t%s\n' "$mode" "$rps" | tee -a "$results"
done
redis-cli -p "$primary" flushall >/dev/null

http_port=$(free_port); agent_port=$(free_port); operator_port=$(free_port)
dotnet "$bench_dll" mint-setup --dir "$work/broker" --redis "127.0.0.1:$primary" --http "$http_port" --agent "$agent_port" --operator "$operator_port" >/dev/null
mapfile -t broker_args <"$work/broker/broker.args"

# run <label> <fsync> <extra broker args...>: start the broker, measure at concurrency $c, stop it.
run() {
  local label=$1 mode=$2; shift 2
  fsync "$mode"
  measure_broker "$work/broker-$label.log" "$primary_pid" "$c" "$server_dll" "${broker_args[@]}" "$@"
  printf 'MINT\t%s\t%s\n' "$label" "$mint_line" | tee -a "$results"
}

echo "INFO $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before" | tee -a "$results"
run always always
run everysec everysec
run always+WAIT always --CredBroker:Redis:WaitReplicas=1
run everysec+WAIT everysec --CredBroker:Redis:WaitReplicas=1
run always+WAIT+all always --CredBroker:Redis:WaitReplicas=1 --CredBroker:Redis:WaitForLeaseWrites=true
echo "INFO load average $(cut -d' ' -f1-3 /proc/loadavg) after" | tee -a "$results"

/usr/bin/python3 - "$results" "$c" "bench/durability.sh${write:+ --write $write}" >"$work/table.md" <<'PY'
import sys
rows, sets, info = [], {}, []
for line in open(sys.argv[1]):
    parts = line.rstrip("\n").split("\t")
    if parts[0] == "SET":
        sets[parts[1]] = float(parts[2])
    elif parts[0] == "MINT":
        f = dict(kv.split("=", 1) for kv in parts[2].split() if "=" in kv)
        rows.append((parts[1], f))
    elif line.startswith("INFO"):
        info.append(line[5:].strip())
c, command = sys.argv[2], sys.argv[3]
base = float(rows[0][1]["rps"])
print(f"`{command}` — {info[0]}; {info[-1]}. Concurrency {c}, one broker, BeginTask + CompleteTask per mint.\n")
print("| setting | mints/s | ÷ always | p50 | p99 | CompleteTask p99 | failed | redis-benchmark SET/s (same fsync) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for label, f in rows:
    mode = "everysec" if label.startswith("everysec") else "always"
    failed = int(f["begin_failed"]) + int(f["complete_failed"])
    print(f"| {label} | {float(f['rps']):.0f} | {float(f['rps']) / base:.2f} | {float(f['p50_ms']):.2f} ms | {float(f['p99_ms']):.2f} ms | "
          f"{float(f['complete_p99_ms']):.2f} ms | {failed} | {sets.get(mode, float('nan')):.0f} |")
PY
cat "$work/table.md"
if [ -n "$write" ]; then
  dotnet "$bench_dll" write-section --path "$write" --name durability --file "$work/table.md"
fi
