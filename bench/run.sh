#!/usr/bin/env bash
# Runs the taskpipe benchmark and regenerates the results section of docs/performance.md.
#
#   bench/run.sh [--quick] [--build-dir DIR] [--only NAME,...] [--out FILE] [--json FILE]
#                [--baseline DIR]
#
# DIR defaults to build/ (configure and build it first, as README.md says; a Release or
# RelWithDebInfo build). zmq_limit, the framework-free baseline, is built here if missing.
# --baseline DIR: another build (an older commit, say) run in turn with DIR in the process
# per task measurement, so that a change is measured side by side on the same machine.
# As root, GNU parallel and GNU time are installed with apt-get when absent; otherwise the rows
# that need them are skipped.
# Every process runs on 127.0.0.1 under a deadline, and none outlives the harness.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
build_dir=$repo/build
passthrough=()
command_line="bench/run.sh"

while (($#)); do
    case $1 in
        --build-dir) build_dir=$2; command_line+=" --build-dir $2"; shift 2 ;;
        --build-dir=*) build_dir=${1#*=}; command_line+=" $1"; shift ;;
        --quick) passthrough+=(--quick); command_line+=" --quick"; shift ;;
        --only | --out | --json | --baseline) passthrough+=("$1" "$2"); command_line+=" $1 $2"; shift 2 ;;
        -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: error: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

for program in bin/taskpipe bin/taskpipe-ventilator bin/taskpipe-worker bin/taskpipe-sink; do
    if [[ ! -x $build_dir/$program ]]; then
        echo "run.sh: error: $build_dir/$program not found; build first:" >&2
        echo "  cmake -S $repo -B $build_dir -DCMAKE_BUILD_TYPE=Release && cmake --build $build_dir -j2" >&2
        exit 2
    fi
done
if [[ ! -x $build_dir/bench/zmq_limit ]]; then
    echo "run.sh: building zmq_limit in $build_dir" >&2
    cmake --build "$build_dir" --target zmq_limit -j2 >&2
fi
if [[ ! -x $build_dir/bench/service_load ]]; then
    echo "run.sh: building service_load in $build_dir" >&2
    cmake --build "$build_dir" --target service_load -j2 >&2
fi

if ! command -v parallel > /dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get > /dev/null; then
        echo "run.sh: installing GNU parallel (apt-get install parallel)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq parallel > /dev/null 2>&1 ||
            { apt-get update -qq > /dev/null 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -qq parallel > /dev/null 2>&1; } ||
            echo "run.sh: could not install parallel; its row is skipped" >&2
    else
        echo "run.sh: GNU parallel not installed and not root: its row is skipped" >&2
    fi
fi

if [[ ! -x /usr/bin/time ]]; then
    if [[ $(id -u) == 0 ]] && command -v apt-get > /dev/null; then
        echo "run.sh: installing GNU time (apt-get install time)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time > /dev/null 2>&1 ||
            echo "run.sh: could not install GNU time; peak RSS is not measured" >&2
    else
        echo "run.sh: /usr/bin/time (GNU time) missing and not root: peak RSS is not measured" >&2
    fi
fi

bench_pid=
cleanup() {
    if [[ -n $bench_pid ]] && kill -0 "$bench_pid" 2> /dev/null; then
        kill -TERM "$bench_pid" 2> /dev/null || true  # bench.py ends its own processes
        wait "$bench_pid" 2> /dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The whole run is bounded too: about 10 minutes normally, under 5 with --quick.
PYTHONDONTWRITEBYTECODE=1 timeout --signal=TERM --kill-after=10 1800 \
    python3 "$here/bench.py" --build-dir "$build_dir" --command "$command_line" \
    ${passthrough[@]+"${passthrough[@]}"} &
bench_pid=$!
wait "$bench_pid"
