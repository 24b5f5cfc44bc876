#!/usr/bin/env bash
# Fetch Apache Kafka's broker (org.apache.kafka:kafka_2.13) and its runtime jars from Maven
# Central into <repo>/.toolchain/kafka/<version>/libs, once: a later run finds the stamp and exits.
#
# Usage: tools/kafka/fetch.sh [VERSION]   (default: the kafka.version of tools/kafka/pom.xml)
# Environment: SHELFEDGE_KAFKA_HOME overrides <repo>/.toolchain/kafka.
#
# The jars are copied into a temporary folder beside the final one and renamed into place when
# complete, so an interrupted run never leaves a half-filled libs/ that looks finished. Needs
# `mvn` and a Java 17+ runtime (Debian: apt-get install -y maven openjdk-17-jre-headless).
#
# It must never download anything but Maven Central artifacts (through mvn), nor write outside
# its kafka folder and Maven's own local repository.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
pom="$here/pom.xml"
default_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
version="${1:-$default_version}"
kafka_home="${SHELFEDGE_KAFKA_HOME:-$repo_root/.toolchain/kafka}"
dest="$kafka_home/$version"
stamp="$dest/fetched.stamp"

if [ -f "$stamp" ] && [ -d "$dest/libs" ]; then
  exit 0
fi
command -v mvn >/dev/null || { echo "mvn not found: apt-get install -y maven" >&2; exit 1; }
command -v java >/dev/null || { echo "java not found: apt-get install -y openjdk-17-jre-headless" >&2; exit 1; }

echo "fetching Apache Kafka $version jars from Maven Central into $dest/libs"
mkdir -p "$dest"
partial="$(mktemp -d "$dest/libs.partial.XXXXXX")"
trap 'rm -rf "$partial"' EXIT
mvn -q -B -f "$pom" -Dkafka.version="$version" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$partial"
[ -e "$partial/kafka_2.13-$version.jar" ] || {
  echo "Maven copied no kafka_2.13-$version.jar into $partial: is $version a published version?" >&2
  exit 1
}
rm -rf "$dest/libs"
mv "$partial" "$dest/libs"
trap - EXIT
echo "org.apache.kafka:kafka_2.13:$version $(ls "$dest/libs" | wc -l) jars" > "$stamp"
