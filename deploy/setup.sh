#!/bin/sh
# Installs the dependencies and builds taskpipe into build/ (programs: build/bin/taskpipe and the
# taskpipe-* programs beside it; man pages in build/man/). Extra arguments go to the cmake
# configure step. Installing is a separate step: see README.md, "Install".
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/deploy/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$root/build" -j"$(nproc)" >/dev/null
echo "setup: built taskpipe in $root/build (build/bin/taskpipe)"
