#!/usr/bin/env bash
# kube-apiserver.sh builds a real kube-apiserver (k8s.io/kubernetes, from the
# Go module proxy) for internal/testenv/kubetest and prints the binary's path.
#
# The binary is cached per version under the user cache dir; a second run
# only prints the path. Concurrent runs (parallel `go test` packages, make -j)
# serialise on a lock file, so the ~5-12 minute first build happens once. The
# binary is written to a temp file and renamed, so readers never see a
# partial one. Build output goes to stderr; stdout is only the path.
#
# The wrapper module lives in multicluster-tests/kube-apiserver (its own
# go.mod, so the main module never sees its dependencies).
set -euo pipefail

KUBE_VERSION=v1.37.2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/multicluster-tests/kube-apiserver"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/causeway/kube-apiserver/$KUBE_VERSION"
bin="$dir/kube-apiserver"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dir"
exec 9>"$dir/.lock"
if ! flock -n 9; then
	echo "kube-apiserver.sh: waiting for another build of $bin" >&2
	flock 9
fi
# Built by whoever held the lock before us.
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

major=${KUBE_VERSION#v}
major=${major%%.*}
minor=${KUBE_VERSION#v*.}
minor=${minor%%.*}
# Without these the server reports v0.0.0-master+$Format:%H$, which kubectl
# and helm fail to parse.
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=$major"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"

tmp=$(mktemp "$dir/.kube-apiserver.XXXXXX")
trap 'rm -f "$tmp"' EXIT
echo "kube-apiserver.sh: building kube-apiserver $KUBE_VERSION (5-12 min the first time) into $bin" >&2
start=$SECONDS
(cd "$src" && GOWORK=off go build -mod=readonly -buildvcs=false -trimpath -ldflags "$ldflags" -o "$tmp" .) >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
echo "kube-apiserver.sh: built in $((SECONDS - start))s" >&2
echo "$bin"
