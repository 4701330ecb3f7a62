#!/bin/sh
# Installs the dependencies and builds taskpipe into build/ (binaries: build/ventilator/ventilator,
# build/worker/worker, build/sink/sink). Extra arguments go to the cmake configure step.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$root/build" -j"$(nproc)" >/dev/null
echo "setup: built taskpipe in $root/build"
