#!/bin/bash
# taskpipe-hosts (the launcher) without root: the "hosts" are this machine, reached through a fake
# remote shell (--ssh FAKE) that runs the remote command with sh, except for the host named
# "unreachable", for which it fails as ssh does (status 255). The sink and the ventilator talk
# over ipc:// endpoints in a private temporary directory. Checks the launcher's promises
# (taskpipe-hosts --help): failed hosts are reported and make the status 1, the others work;
# SIGTERM stops the workers gracefully; --stop-timeout stops them at once; no worker is left.
#
#   launcher_test.sh SINK WORKER VENTILATOR LAUNCHER
set -u -o pipefail

[ $# -eq 4 ] || { echo "usage: $0 SINK WORKER VENTILATOR LAUNCHER" >&2; exit 2; }
sink_bin=$1 worker_bin=$2 ventilator_bin=$3 launcher=$4
command -v setsid >/dev/null || { echo "SKIPPED: no 'setsid' command (util-linux)"; exit 77; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/taskpipe-launcher.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/fake-ssh" <<'EOF'
#!/bin/sh
host=$1
shift
if [ "$host" = unreachable ]; then
    echo "ssh: connect to host unreachable port 22: No route to host" >&2
    exit 255
fi
exec sh -c "$1"
EOF
chmod +x "$dir/fake-ssh"

alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! alive "$1"; }
# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND until it succeeds or SECONDS pass.
wait_for() {
    local deadline=$((SECONDS + $1 + 1)) what=$2
    shift 2
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for $what" >&2; return 1; }
        sleep 0.05
    done
}
failures=0
check() {  # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then
        echo "ok: $what"
    else
        echo "FAIL: $what" >&2
        failures=$((failures + 1))
    fi
}
says() { grep -q -- "$2" "$1"; }
worker_pid_of() { sed -n 's/^taskpipe-hosts: worker started, pid \([0-9]*\)$/\1/p' "$1" | head -n 1; }

# ---- one good host, one unreachable; a batch goes through the good one; SIGTERM stops it ----
run=$dir/one
mkdir "$run"
"$sink_bin" --bind "ipc://$run/results" --control "ipc://$run/control" --jsonl \
    >"$run/results.jsonl" 2>"$run/sink.log" &
sink_pid=$!
pids+=("$sink_pid")
"$launcher" --ssh "$dir/fake-ssh" -H good,unreachable -v "ipc://$run/tasks" -s "ipc://$run/results" \
    --worker "$worker_bin" -c 2 --log-dir "$run/hosts" -- --builtin echo 2>"$run/launcher.log" &
launcher_pid=$!
pids+=("$launcher_pid")
wait_for 20 "the launcher's start report" says "$run/launcher.log" '^taskpipe-hosts: workers started'
check "1 of 2 hosts started" says "$run/launcher.log" 'workers started on 1 of 2 hosts: good$'
check "the unreachable host is reported as it fails" \
    says "$run/launcher.log" '^taskpipe-hosts: unreachable: could not run the remote shell (status 255'
seq 1 20 | "$ventilator_bin" --bind "ipc://$run/tasks" --sink "ipc://$run/control" 2>"$run/ventilator.log"
check "the batch completes through the good host (ventilator status 0)" [ $? -eq 0 ]
wait_for 10 "the sink to exit" gone "$sink_pid"
check "every result once" [ "$(grep -o '"id":[0-9]*' "$run/results.jsonl" | sort -u | wc -l)" -eq 20 ]
good_worker=$(worker_pid_of "$run/hosts/good.log")
kill -TERM "$launcher_pid"
wait_for 20 "the launcher to stop" gone "$launcher_pid"
wait "$launcher_pid"
check "status 1: a host failed" [ $? -eq 1 ]
check "the summary lists the failed host" says "$run/launcher.log" '^taskpipe-hosts:   unreachable: '
check "the good host's worker stopped cleanly" says "$run/launcher.log" '^good: [0-9TZ:.-]* worker info: stopped after'
check "the good host's worker is gone" gone "$good_worker"

# ---- a worker busy with a long task: --stop-timeout stops it at once -------------------------
run=$dir/two
mkdir "$run"
"$sink_bin" --bind "ipc://$run/results" --control "ipc://$run/control" >/dev/null 2>"$run/sink.log" &
pids+=("$!")
echo 60000 | "$ventilator_bin" --bind "ipc://$run/tasks" --sink "ipc://$run/control" \
    2>"$run/ventilator.log" &
pids+=("$!")
# shellcheck disable=SC2016  # $1 is the task, for the worker's sh
"$launcher" --ssh "$dir/fake-ssh" -H busy -v "ipc://$run/tasks" -s "ipc://$run/results" \
    --worker "$worker_bin" -c 1 --log-dir "$run/hosts" --stop-timeout 1 \
    -- --heartbeat 0.2 --shell 'sleep $(($1 / 1000))' 2>"$run/launcher.log" &
launcher_pid=$!
pids+=("$launcher_pid")
wait_for 20 "the worker to start" says "$run/launcher.log" '^taskpipe-hosts: workers started on 1 of 1'
busy_worker=$(worker_pid_of "$run/hosts/busy.log")
# The task is running once the worker has a child (the shell running sleep).
has_child() { pgrep -P "$1" >/dev/null; }
wait_for 20 "the task to be running" has_child "$busy_worker"
kill -TERM "$launcher_pid"
wait_for 20 "the launcher to stop" gone "$launcher_pid"
wait "$launcher_pid"
check "status 1: a worker had to be stopped at once" [ $? -eq 1 ]
check "the reason is the stop timeout" \
    says "$run/launcher.log" 'busy: did not stop within --stop-timeout; stopped at once'
check "the busy worker is gone" gone "$busy_worker"

# ---- usage errors and a missing worker program ----------------------------------------------
"$launcher" --server localhost -- --builtin echo 2>"$dir/usage.log"
check "no hosts: status 2" [ $? -eq 2 ]
"$launcher" --ssh "$dir/fake-ssh" -H a,b --server localhost --worker "$dir/no-such-worker" \
    -- --builtin echo 2>"$dir/missing.log"
check "no worker program anywhere: status 2" [ $? -eq 2 ]
check "and it says so" says "$dir/missing.log" 'no worker program'

if [ "$failures" -gt 0 ]; then
    for log in "$dir"/*/launcher.log; do echo "---- $log" >&2; cat "$log" >&2; done
    exit 1
fi
echo "PASS"
