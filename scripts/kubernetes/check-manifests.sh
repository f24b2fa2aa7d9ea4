#!/usr/bin/env bash
# Checks deploy/kubernetes/*.yaml against Kubernetes' own OpenAPI schemas, strictly (an unknown field is an error),
# with kubernetes-validate from PyPI (pinned; it bundles the schemas, so nothing else is fetched), in a virtualenv
# of its own under target/. First proves the check can fail: a manifest with a misspelt field and a wrong type
# must be refused. For CI (.ci/run) and by hand.
# Usage: scripts/kubernetes/check-manifests.sh [KUBERNETES_VERSION]   (default 1.33.0, where the Job's
# backoffLimitPerIndex is GA; the schemas of 1.28, where it came in as alpha, accept the manifests too, 1.27's do not)
# Exit: 0 every manifest is valid, 1 one is not (the validator says which field), 2 the check could not run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="${1:-1.33.0}"
venv="${CARGO_TARGET_DIR:-$root/target}/tools/kubernetes-validate"
version_pinned="1.37.0"
pin="kubernetes-validate==$version_pinned"

installed="$("$venv/bin/pip" show kubernetes-validate 2>/dev/null || true)"
if ! grep -qx "Version: $version_pinned" <<<"$installed"; then
    echo "installing $pin into $venv"
    python3 -m venv "$venv" || { echo "check-manifests: python3 -m venv failed" >&2; exit 2; }
    "$venv/bin/pip" install -q "$pin" || { echo "check-manifests: pip install $pin failed" >&2; exit 2; }
fi
validate=("$venv/bin/kubernetes-validate" --strict --no-warn -k "$version")

# The check must be able to fail: a Job with a misspelt field (`completion`) and a string where a number goes.
bad="$(mktemp --suffix=.yaml)"
trap 'rm -f "$bad"' EXIT
cat > "$bad" <<'YAML'
apiVersion: batch/v1
kind: Job
metadata:
  name: broken
spec:
  completion: 4
  parallelism: "four"
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: x
          image: x
YAML
if "${validate[@]}" --quiet "$bad" >/dev/null 2>&1; then
    echo "check-manifests: the validator accepted a broken manifest; it checks nothing" >&2
    exit 2
fi

"${validate[@]}" "$root"/deploy/kubernetes/*.yaml
