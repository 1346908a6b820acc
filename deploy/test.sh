#!/usr/bin/env bash
# Checks everything under deploy/: the Helm chart (helm lint and template
# with the example values, manifests decoded strictly into Kubernetes types),
# the image's static build, the GitOps workflow (actionlint with shellcheck,
# yamllint), the Grafana dashboard against a running gateway's /metrics, and
# the chart's shared storage against a real redis-server.
# Helm, the Kubernetes types and actionlint are Go libraries of this module;
# yamllint, shellcheck and redis-server are programs this script needs
# installed (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v yamllint >/dev/null || missing+=(yamllint)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deploy/test.sh: ${missing[*]} not installed; install them (apt-get install ${missing[*]}) and rerun" >&2
  exit 1
fi

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "deploy/test.sh: not gofmt'd: $unformatted" >&2
  exit 1
fi
go vet ./...
# With the tools installed, a missing one is a failure, not a skip.
FLEXGATE_REQUIRE_TOOLS=1 go test -count=1 ./...
