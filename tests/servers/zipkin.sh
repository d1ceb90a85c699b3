#!/usr/bin/env bash
# Zipkin for the tests (tests/servers/traces.py starts it with `java -jar`): the
# io.zipkin:zipkin-server exec jar from Maven Central, fetched with Maven into
# ${MESHTOP_CACHE:-~/.cache/meshtop}/servers/zipkin-<version>/zipkin-server-<version>-exec.jar.
# Zipkin 3 needs Java 17 or later. Idempotent: nothing is done when the jar is there.
set -euo pipefail

VERSION=3.5.1
PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
CACHE="${MESHTOP_CACHE:-$HOME/.cache/meshtop}/servers"
DIR="$CACHE/zipkin-$VERSION"
JAR="$DIR/zipkin-server-$VERSION-exec.jar"

if [ -s "$JAR" ]; then
	echo "zipkin: $JAR"
	exit 0
fi
if ! command -v mvn >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
	echo "zipkin: no 'mvn' or 'java' here to fetch Zipkin $VERSION; the tests that need it will be skipped" >&2
	exit 0
fi

echo "zipkin: fetching io.zipkin:zipkin-server:$VERSION:exec from Maven Central into $DIR"
start=$SECONDS
mkdir -p "$DIR"
TMP="$(mktemp -d "$DIR/fetch.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mvn --batch-mode --quiet -Dstyle.color=never "$PLUGIN:copy" \
	-Dartifact="io.zipkin:zipkin-server:$VERSION:jar:exec" \
	-DoutputDirectory="$TMP" -Dmdep.overWriteReleases=true
mv "$TMP/zipkin-server-$VERSION-exec.jar" "$JAR" # last: a half-done fetch never looks cached
echo "zipkin: fetched $JAR in $((SECONDS - start))s"
