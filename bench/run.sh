#!/usr/bin/env bash
# Minting side by side, in one run on this machine (loopback only, bounded, < 10 min):
#   1. the limits: openssl ES256 sign/verify (one core and -multi <cores>), redis-benchmark;
#   2. CredBroker in production mode (real Redis with AOF always, workload-JWT agent auth, a
#      throwaway signing key) driven with BeginTask + CompleteTask at each concurrency level;
#      plus one fixed-request run by our load client and by h2load, to show the client is not the limit;
#   3. the peer: node oidc-provider 9.x (client_credentials, ES256 JWT access tokens) under autocannon;
#   4. the table, a plot (throughput and p99 against concurrency, SVG), and one line:
#      RESULT mint_rps=… mint_p99_ms=… peer_rps=… … sign_efficiency=… write_efficiency=…
#      (write_efficiency = mints/s ÷ redis-benchmark SET/s at the same concurrency and fsync setting:
#      the durable-write limit of this machine's disk, measured in the same run).
# Usage: bench/run.sh [--write docs/benchmarks.md]
# Env: BENCH_SECONDS (measured seconds per level, default 10), BENCH_LEVELS (default "1 16 64 256"),
#      BENCH_BROKER_ARGS (extra broker arguments, e.g. to compare a setting: "--CredBroker:X=Y").
# Every process it starts is stopped on exit (trap), and each step runs under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
write=""
[ "${1:-}" = "--write" ] && write="${2:?--write needs a path}"
seconds=${BENCH_SECONDS:-10}
levels=${BENCH_LEVELS:-"1 16 64 256"}
warmup=2
cores=$(nproc)
source bench/lib.sh
bench_init bench
results="$work/results.txt"

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
# CPU seconds (utime+stime, all threads) of a running process, from /proc.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"; }
# CPU seconds used by this shell's reaped children so far (the `times` builtin's second line).
# `times` runs in this shell (a $(...) subshell would report its own, empty, children).
children_cpu() {
  times >"$work/times"
  awk 'NR == 2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }' "$work/times"
}

step "tools"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v openssl >/dev/null || missing+=(openssl)
command -v node >/dev/null || missing+=(nodejs npm)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
peer_dir="$root/.artifacts/bench"
mkdir -p "$peer_dir"
if ! cmp -s bench/peer/package-lock.json "$peer_dir/package-lock.json" || [ ! -d "$peer_dir/node_modules/oidc-provider" ]; then
  cp bench/peer/package.json bench/peer/package-lock.json "$peer_dir/"
  (cd "$peer_dir" && timeout 180 npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp bench/peer/server.mjs "$peer_dir/"
# On a busy 2-core machine a cold Release build alone can take 4-5 minutes.
timeout 420 dotnet build bench/CredBroker.Bench -c Release -nologo -clp:ErrorsOnly -v quiet >"$work/build.log" 2>&1 \
  || { tail -20 "$work/build.log"; echo "bench/run.sh: the build failed or took over 7 minutes" >&2; exit 1; }
bench_dll="$root/bench/CredBroker.Bench/bin/Release/net10.0/CredBroker.Bench.dll"
server_dll="$root/src/CredBroker.Server/bin/Release/net10.0/CredBroker.Server.dll"

{
  echo "INFO date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "INFO machine: $cores cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(free -g | awk '/Mem:/ { print $2 }') GiB, Linux $(uname -r)"
  echo "INFO versions: .NET $(dotnet --version), $(openssl version | cut -d' ' -f1-2), redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), node $(node --version), oidc-provider $(node -p "require('$peer_dir/node_modules/oidc-provider/package.json').version"), autocannon $(node -p "require('$peer_dir/node_modules/autocannon/package.json').version"), $(h2load --version | head -1)"
  echo "INFO loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$results"

step "openssl speed ecdsap256 (one core, then -multi $cores)"
speed() { timeout 60 openssl speed -seconds 3 "$@" ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ { print $(NF-1), $NF }' | tail -1; }
read -r sign1 verify1 < <(speed)
read -r signm verifym < <(speed -multi "$cores")
echo "OPENSSL cores=$cores sign_1=$sign1 verify_1=$verify1 sign_multi=$signm verify_multi=$verifym" | tee -a "$results"

step "redis-server (appendonly yes, appendfsync always) and redis-benchmark"
redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --protected-mode yes --save "" --dir "$work/redis" \
  --appendonly yes --appendfsync always --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
  kill -0 "$redis_pid" || { cat "$work/redis.log"; exit 1; }
  sleep 0.05
done
rb() { redis_bench "$redis_port" "$@"; }
set_rps=$(rb 16 20000 -t set)
get_rps=$(rb 16 20000 -t get)
eval_rps=$(rb 16 20000 EVAL "redis.call('HSET', KEYS[1], 'state', 'active'); return 1" 1 'bench:{__rand_int__}')
echo "REDIS set=$set_rps get=$get_rps eval=$eval_rps" | tee -a "$results"
# The durable-write limit at each concurrency the broker is driven at (same fsync setting), and at 16
# with everysec for the everysec comparison row: write_efficiency divides the mint rate by these.
for c in $levels; do
  echo "REDISSET concurrency=$c fsync=always rps=$(rb "$c" $((c < 16 ? 3000 : 20000)) -t set)" | tee -a "$results"
done
redis-cli -p "$redis_port" config set appendfsync everysec >/dev/null
echo "REDISSET concurrency=16 fsync=everysec rps=$(rb 16 20000 -t set)" | tee -a "$results"
redis-cli -p "$redis_port" config set appendfsync always >/dev/null
redis-cli -p "$redis_port" flushall >/dev/null
redis-cli -p "$redis_port" config resetstat >/dev/null

step "CredBroker (production mode) on loopback"
http_port=$(free_port); agent_port=$(free_port); operator_port=$(free_port)
dotnet "$bench_dll" mint-setup --dir "$work/broker" --redis "127.0.0.1:$redis_port" --http "$http_port" --agent "$agent_port" --operator "$operator_port"
mapfile -t broker_args <"$work/broker/broker.args"
# shellcheck disable=SC2206 # word splitting of the extra arguments is intended
broker_args+=(${BENCH_BROKER_ARGS:-})
[ -n "${BENCH_BROKER_ARGS:-}" ] && echo "INFO broker_args: ${BENCH_BROKER_ARGS}" >>"$results"
dotnet "$server_dll" "${broker_args[@]}" >"$work/broker.log" 2>&1 &
broker_pid=$!
pids+=("$broker_pid")
wait_http "http://127.0.0.1:$http_port/readyz" 60 || { tail -20 "$work/broker.log"; exit 1; }
target="http://127.0.0.1:$agent_port"
load() {
  timeout $((seconds + warmup + 60)) dotnet "$bench_dll" mint-load --target "$target" --credential-file "$work/broker/credential.jwt" \
    --warmup "$warmup" --seconds "$seconds" --watch "broker=$broker_pid" --watch "redis=$redis_pid" "$@"
}

for c in $levels; do
  step "CredBroker: BeginTask + CompleteTask, concurrency $c"
  load --concurrency "$c" | tee -a "$results"
done

# The same mint load with Redis fsyncing once a second instead of before every reply, to show what the
# fsync costs (a runtime setting; the production setting is restored right after).
step "CredBroker: concurrency 16 with appendfsync everysec (comparison only)"
redis-cli -p "$redis_port" config set appendfsync everysec >/dev/null
load --concurrency 16 --tag mint-everysec | tee -a "$results"
redis-cli -p "$redis_port" config set appendfsync always >/dev/null

# Where Redis spent its time: calls and microseconds per call of each command (scripts run as EVAL/EVALSHA).
redis-cli -p "$redis_port" info commandstats | tr -d '\r' | awk -F'[:,=]' '/^cmdstat_(eval|evalsha|get|hgetall|smembers)/ {
  printf "%s_calls=%s %s_usec_per_call=%s ", substr($1, 9), $3, substr($1, 9), $7 } END { print "" }' | sed 's/^/REDISSTATS /' | tee -a "$results"

step "load client vs h2load on one fixed request (16 streams over 4 connections)"
load --concurrency 16 --connections 4 --fixed | tee -a "$results"
credential=$(cat "$work/broker/credential.jwt")
broker_cpu0=$(cpu_of "$broker_pid"); children_cpu >"$work/gen0"
h2out=$(timeout $((seconds + 60)) h2load -c 4 -m 4 -D "$seconds" -H 'content-type: application/grpc' -H 'te: trailers' \
  -H "authorization: Bearer $credential" -d "$work/broker/begin-fixed.bin" "$target/credbroker.v1.AgentBroker/BeginTask")
broker_cpu1=$(cpu_of "$broker_pid"); children_cpu >"$work/gen1"
awk -v s="$seconds" -v b0="$broker_cpu0" -v b1="$broker_cpu1" -v g0="$(cat "$work/gen0")" -v g1="$(cat "$work/gen1")" '
  /^finished in/ { rps = $4 + 0 }
  /^requests:/ { ok = $8; failed = $10 }
  /^time for request:/ { mean = $6; unit = $6; sub(/[0-9.]+/, "", unit); mean += 0; if (unit == "us") mean /= 1000; if (unit == "s") mean *= 1000 }
  END { printf "H2LOAD concurrency=16 rps=%.0f succeeded=%s failed=%s mean_ms=%.2f cpu_broker=%.3f cpu_h2load=%.3f\n", rps, ok, failed, mean, (b1 - b0) / s, (g1 - g0) / s }
' <<<"$h2out" | tee -a "$results"
step "CredBroker idle (no calls, after the load): its own background CPU"
timeout 60 dotnet "$bench_dll" mint-load --target "$target" --credential-file "$work/broker/credential.jwt" \
  --concurrency 0 --warmup 1 --seconds 5 --watch "broker=$broker_pid" --watch "redis=$redis_pid" | tee -a "$results"
echo "broker: $(grep -c . "$work/broker.log") log lines"
kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true

step "peer: oidc-provider (client_credentials, ES256 JWT access tokens)"
peer_port=$(free_port)
peer_secret=$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
(cd "$peer_dir" && PEER_CLIENT_SECRET="$peer_secret" NODE_ENV=production exec node server.mjs "$peer_port") >"$work/peer.log" 2>&1 &
peer_pid=$!
pids+=("$peer_pid")
basic=$(printf 'bench-agent:%s' "$peer_secret" | base64 -w0)
body='grant_type=client_credentials&scope=tickets:read'
until curl -fs -o "$work/peer-token.json" -H "authorization: Basic $basic" -d "$body" "http://127.0.0.1:$peer_port/token"; do
  kill -0 "$peer_pid" || { cat "$work/peer.log"; exit 1; }
  sleep 0.1
done
node -e '
  const t = require(process.argv[1]).access_token.split(".");
  const h = JSON.parse(Buffer.from(t[0], "base64url"));
  if (h.alg !== "ES256" || h.typ !== "at+jwt" || t[2].length !== 86) { console.error("the peer did not issue an ES256 at+jwt", h); process.exit(1); }
  console.log("peer issues", JSON.stringify(h));' "$work/peer-token.json"
cannon() { # connections, seconds
  timeout $(($2 + 60)) node "$peer_dir/node_modules/autocannon/autocannon.js" -c "$1" -d "$2" -m POST \
    -H "authorization=Basic $basic" -H 'content-type=application/x-www-form-urlencoded' -b "$body" --json \
    "http://127.0.0.1:$peer_port/token" 2>/dev/null
}
for c in $levels; do
  step "peer: autocannon, $c connections"
  cannon "$c" "$warmup" >/dev/null
  peer_cpu0=$(cpu_of "$peer_pid"); children_cpu >"$work/gen0"
  cannon "$c" "$seconds" >"$work/cannon.json"
  peer_cpu1=$(cpu_of "$peer_pid"); children_cpu >"$work/gen1"
  node -e '
    const r = require(process.argv[1]); const [c, pc, gc] = process.argv.slice(2).map(Number);
    const s = r.duration; const ok = r["2xx"];
    console.log(`PEER concurrency=${c} rps=${(ok / s).toFixed(0)} ok=${ok} non2xx=${r.non2xx} errors=${r.errors + r.timeouts} ` +
      `p50_ms=${r.latency.p50} p99_ms=${r.latency.p99} max_ms=${r.latency.max} cpu_peer=${(pc / s).toFixed(3)} cpu_autocannon=${(gc / s).toFixed(3)}`);
  ' "$work/cannon.json" "$c" "$(awk "BEGIN { print $peer_cpu1 - $peer_cpu0 }")" "$(awk "BEGIN { print $(cat "$work/gen1") - $(cat "$work/gen0") }")" | tee -a "$results"
done

echo "INFO loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results"
step "report"
report=(mint-report --results "$results" --command "bench/run.sh${write:+ --write $write}")
[ -n "$write" ] && report+=(--write "$write")
# Every run's RESULT line goes into the history table of docs/benchmarks.md, misses included.
report+=(--history "${write:-docs/benchmarks.md}")
dotnet "$bench_dll" "${report[@]}"
