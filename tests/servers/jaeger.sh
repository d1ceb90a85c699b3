#!/usr/bin/env bash
# Jaeger v2 for the tests (tests/servers/traces.py starts it): built with `go` from the
# module github.com/jaegertracing/jaeger, whose cmd/jaeger is Jaeger v2 (module v1.76.0
# is Jaeger v2.13.0), into ${MESHTOP_CACHE:-~/.cache/meshtop}/servers/jaeger-<version>/.
# Idempotent: nothing is done when that version's binary is there.
#
# `go install …/cmd/jaeger@v1.76.0` refuses the module (its go.mod has a replace
# directive), so a small wrapper module requires it, copies its replace directives and
# builds the command: the same dependency versions Jaeger's own go.mod selects.
set -euo pipefail

VERSION=v1.76.0 # the module's version
RELEASE=v2.13.0 # Jaeger's, for the same tag (its CHANGELOG: "v1.76.0 / v2.13.0")
MODULE=github.com/jaegertracing/jaeger
CACHE="${MESHTOP_CACHE:-$HOME/.cache/meshtop}/servers"
DIR="$CACHE/jaeger-${VERSION#v}"
BIN="$DIR/jaeger"

if [ -x "$BIN" ]; then
	echo "jaeger: $BIN"
	exit 0
fi
if ! command -v go >/dev/null 2>&1; then
	echo "jaeger: no 'go' here to build Jaeger $VERSION; the tests that need it will be skipped" >&2
	exit 0
fi

echo "jaeger: building $MODULE/cmd/jaeger@$VERSION into $DIR (once; a few minutes)"
start=$SECONDS
mkdir -p "$DIR"
SRC="$(mktemp -d "$DIR/build.XXXXXX")"
trap 'rm -rf "$SRC"' EXIT
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -mod=mod"

gomod="$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[ -f "$gomod" ] || { echo "jaeger: cannot download $MODULE@$VERSION" >&2; exit 1; }
{
	echo "module meshtop.test/jaeger"
	echo
	grep -E '^go [0-9.]+$' "$gomod"
	echo
	echo "require $MODULE $VERSION"
	echo
	# the module's own replace directives, single-line or in a block
	awk '/^replace \(/{b=1; print; next} b{print; if ($0 ~ /^\)/) b=0; next} /^replace /{print}' "$gomod"
} >"$SRC/go.mod"
cat >"$SRC/tools.go" <<EOF
//go:build tools

package tools

import _ "$MODULE/cmd/jaeger"
EOF
(
	cd "$SRC"
	go mod tidy -e >/dev/null 2>&1 || true # resolves the rest; a build error says more below
	go build -trimpath -o "$SRC/jaeger" \
		-ldflags "-s -w -X $MODULE/internal/version.latestVersion=$RELEASE" \
		"$MODULE/cmd/jaeger"
)
mv "$SRC/jaeger" "$BIN" # last: a half-done build never looks cached
echo "jaeger: built $BIN in $((SECONDS - start))s"
