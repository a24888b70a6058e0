#!/usr/bin/env bash
# Two broker builds side by side in one run: the same Redis (AOF, appendfsync always), the same
# agent, keys and workload credential, the same load client (this tree's mint-load), and the two
# brokers measured in alternation (A B A B ...) at each concurrency level, so load from elsewhere
# on the machine hits both alike. Reports mints/s, p99 and broker CPU per mint for each, and the
# ratios B ÷ A.
# Usage: bench/compare.sh <A: a broker build dir or CredBroker.Server.dll> [label A] [label B]
#   B is this tree's broker. To compare against an earlier commit:
#     git worktree add --detach /tmp/credbroker-before <commit>
#     dotnet build /tmp/credbroker-before/src/CredBroker.Server -c Release
#     bench/compare.sh /tmp/credbroker-before/src/CredBroker.Server/bin/Release/net10.0 before after
# Env: BENCH_SECONDS (measured seconds per run, default 8), BENCH_LEVELS (default "1 16"),
#      BENCH_ROUNDS (alternations per level, default 2).
# Loopback only, bounded: every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
a_path=${1:?usage: bench/compare.sh <broker A build dir or dll> [label A] [label B]}
[ -d "$a_path" ] && a_path="$a_path/CredBroker.Server.dll"
[ -f "$a_path" ] || { echo "no broker at $a_path" >&2; exit 2; }
label_a=${2:-A}
label_b=${3:-B}
seconds=${BENCH_SECONDS:-8}
levels=${BENCH_LEVELS:-"1 16"}
rounds=${BENCH_ROUNDS:-2}
source bench/lib.sh
bench_init compare

bench_build
b_path="$root/src/CredBroker.Server/bin/Release/net10.0/CredBroker.Server.dll"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --dir "$work" --appendonly yes --appendfsync always --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do kill -0 "$redis_pid"; sleep 0.05; done

http_port=$(free_port); agent_port=$(free_port); operator_port=$(free_port)
dotnet "$bench_dll" mint-setup --dir "$work/broker" --redis "127.0.0.1:$redis_port" --http "$http_port" --agent "$agent_port" --operator "$operator_port"
mapfile -t broker_args <"$work/broker/broker.args"

# run <label> <server dll> <concurrency>: start that broker, measure, stop it.
run() {
  measure_broker "$work/broker-$1.log" "$redis_pid" "$3" "$2" "${broker_args[@]}"
  printf '%s\t%s\n' "$1" "$mint_line" | tee -a "$work/results.txt"
}

echo "INFO $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before; A=$label_a ($a_path) B=$label_b (this tree)"
for c in $levels; do
  for ((r = 1; r <= rounds; r++)); do
    run "$label_a" "$a_path" "$c"
    run "$label_b" "$b_path" "$c"
  done
done
echo "INFO load average $(cut -d' ' -f1-3 /proc/loadavg) after"

# Per level and build: summed mints over summed seconds, the worst p99, broker CPU per mint.
/usr/bin/python3 - "$work/results.txt" "$label_a" "$label_b" <<'PY'
import collections, re, sys
rows = collections.defaultdict(lambda: {"mints": 0, "seconds": 0.0, "p99": 0.0, "cpu": 0.0, "failed": 0})
for line in open(sys.argv[1]):
    label, rest = line.rstrip("\n").split("\t", 1)
    f = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
    r = rows[(int(f["concurrency"]), label)]
    s = float(f["seconds"])
    r["mints"] += int(f["begin_ok"]); r["seconds"] += s
    r["p99"] = max(r["p99"], float(f["p99_ms"]))
    r["cpu"] += float(f.get("cpu_broker", 0)) * s
    r["failed"] += int(f["begin_failed"]) + int(f["complete_failed"])
a, b = sys.argv[2], sys.argv[3]
print(f"| concurrency | {a} mints/s | {b} mints/s | {b} ÷ {a} | {a} p99 | {b} p99 | {a} broker CPU ms/mint | {b} broker CPU ms/mint | failed ({a}/{b}) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in sorted({k[0] for k in rows}):
    x, y = rows[(c, a)], rows[(c, b)]
    rx, ry = x["mints"] / x["seconds"], y["mints"] / y["seconds"]
    cx, cy = 1000 * x["cpu"] / max(x["mints"], 1), 1000 * y["cpu"] / max(y["mints"], 1)
    print(f"| {c} | {rx:.0f} | {ry:.0f} | **{ry / rx:.2f}** | {x['p99']:.1f} ms | {y['p99']:.1f} ms | {cx:.2f} | {cy:.2f} | {x['failed']}/{y['failed']} |")
PY
