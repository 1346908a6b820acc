#!/usr/bin/env bash
# Checks everything under deploy/: the Helm chart (helm lint and template
# with the seed values, manifests decoded strictly into Kubernetes types),
# the image's static build, the GitOps workflow (actionlint with shellcheck,
# yamllint), the Grafana dashboard against a running gateway's /metrics, and
# the chart's shared storage against a real redis-server.
# Helm, the Kubernetes types and actionlint are Go libraries of this module;
# yamllint, shellcheck and redis-server come from Debian and are installed
# when missing.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v yamllint >/dev/null || missing+=(yamllint)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "deploy/test.sh: ${missing[*]} not installed and no apt-get to install them; install them and rerun" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  echo "deploy/test.sh: installing ${missing[*]}"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "deploy/test.sh: not gofmt'd: $unformatted" >&2
  exit 1
fi
go vet ./...
# With the tools installed, a missing one is a failure, not a skip.
FLEXGATE_REQUIRE_TOOLS=1 go test -count=1 ./...
