# Shared by the bench scripts (sourced): a scratch directory, processes stopped on exit, free
# loopback ports, waiting for an HTTP endpoint. Usage: bench_init <scratch-name>; then pids+=($!)
# for every process started.
bench_init() {
  work=$(mktemp -d "/tmp/credbroker-$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}

# Builds the bench project (and with it the broker) in Release, bounded; sets bench_dll. Needs $root and $work.
bench_build() {
  timeout 420 dotnet build "$root/bench/CredBroker.Bench" -c Release -nologo -clp:ErrorsOnly -v quiet >"$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log"; exit 1; }
  bench_dll="$root/bench/CredBroker.Bench/bin/Release/net10.0/CredBroker.Bench.dll"
}

# redis-benchmark: port, clients, requests, then the test (e.g. -t set); prints requests per second.
redis_bench() {
  local port=$1 clients=$2 requests=$3; shift 3
  timeout 120 redis-benchmark -p "$port" -c "$clients" -n "$requests" -r 100000 --csv "$@" | awk -F'"' 'NR > 1 { print $4 }' | tail -1
}

# measure_broker <log> <redis pid> <concurrency> <server dll> [broker args...]: starts that broker, waits until it is
# ready, runs mint-load for $seconds at that concurrency (watching the broker's and Redis's CPU), stops the broker, and
# leaves mint-load's line in $mint_line. Uses $work, $bench_dll, $http_port, $agent_port (set by the caller).
measure_broker() {
  local log=$1 redis=$2 concurrency=$3 dll=$4; shift 4
  dotnet "$dll" "$@" >"$log" 2>&1 &
  local broker_pid=$!
  pids+=("$broker_pid")
  wait_http "http://127.0.0.1:$http_port/readyz" 60 || { tail -20 "$log"; exit 1; }
  mint_line=$(timeout $((seconds + 70)) dotnet "$bench_dll" mint-load --target "http://127.0.0.1:$agent_port" --credential-file "$work/broker/credential.jwt" \
    --warmup 2 --seconds "$seconds" --concurrency "$concurrency" --watch "broker=$broker_pid" --watch "redis=$redis")
  kill "$broker_pid"; wait "$broker_pid" 2>/dev/null || true
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url, seconds
  local deadline=$((SECONDS + $2))
  until curl -fs -o /dev/null "$1"; do
    [ $SECONDS -lt $deadline ] || { echo "not ready: $1" >&2; return 1; }
    sleep 0.1
  done
}
