#!/bin/bash
# Many hosts, for real: three network namespaces on one bridge stand for three hosts. Host A
# runs the sink and the ventilator, hosts B and C a worker each, started by
# taskpipe-hosts with `--ssh 'ip netns exec {} sh -c'` in place of ssh.
#
#   multihost_test.sh batch|cutoff|run SINK WORKER VENTILATOR LAUNCHER TASKPIPE
#
# batch:  "Every task of a batch ends with exactly one line of output (one result)"
#         (docs/reliability.md), with the work spread over both worker hosts.
# cutoff: "a worker's host is cut off the network: as a kill ... each [task printed] once":
#         mid-batch, nftables (or iptables) rules in C drop every packet to and from it; the
#         batch still ends with every result exactly once, B having done C's share.
# run:    `taskpipe run -S B,C` on A, as `parallel -S` would: it "also starts workers on those
#         hosts that connect back", and A runs none (no ':'); every result once, from two
#         workers, status 0, and no worker left on B or C afterwards.
#
# Needs root, iproute2 and network namespaces; exits 77 (CTest: skipped) with a message where
# it cannot have them, and `cutoff` also where neither nft nor iptables is installed. The
# namespaces are named after this process's pid, so parallel runs do not collide, and are
# deleted, with every process in them, on every exit path. Each namespace has its own network
# stack, so the programs use the documented fixed ports (5557, 5558) without meeting anyone
# else's. Every wait polls a condition with a deadline.
set -u -o pipefail

usage() { echo "usage: $0 batch|cutoff|run SINK WORKER VENTILATOR LAUNCHER TASKPIPE" >&2; exit 2; }
[ $# -eq 6 ] || usage
mode=$1 sink_bin=$2 worker_bin=$3 ventilator_bin=$4 launcher=$5 taskpipe=$6
case "$mode" in batch | cutoff | run) ;; *) usage ;; esac

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$EUID" -eq 0 ] || skip "creating network namespaces needs root"
command -v ip >/dev/null || skip "no 'ip' command (install iproute2)"
command -v setsid >/dev/null || skip "no 'setsid' command (util-linux), which the launcher needs"
cut_tool=""
if [ "$mode" = cutoff ]; then
    if command -v nft >/dev/null; then
        cut_tool=nft
    elif command -v iptables >/dev/null; then
        cut_tool=iptables
    else
        skip "neither nft (nftables) nor iptables is installed, so no host can be cut off"
    fi
fi

tag=$$
ns_bridge=tpX$tag  # holds only the bridge: nothing of the test touches the root namespace
ns_a=tpA$tag
ns_b=tpB$tag
ns_c=tpC$tag
all_ns=("$ns_a" "$ns_b" "$ns_c" "$ns_bridge")
server=10.77.0.1
dir=$(mktemp -d "${TMPDIR:-/tmp}/taskpipe-multihost.XXXXXX")
sink_pid=""
ventilator_pid=""
launcher_pid=""

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
gone() { ! alive "$1"; }

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND until it succeeds or SECONDS pass.
wait_for() {
    local deadline=$((SECONDS + $1 + 1)) what=$2
    shift 2
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "FAIL: timed out waiting for $what" >&2
            return 1
        fi
        sleep 0.05
    done
}

cleanup() {
    local ns pid
    if alive "$launcher_pid"; then
        kill -TERM "$launcher_pid" 2>/dev/null
        wait_for 15 "the launcher to stop" gone "$launcher_pid" ||
            kill -KILL "$launcher_pid" 2>/dev/null
    fi
    for pid in $sink_pid $ventilator_pid; do kill -KILL "$pid" 2>/dev/null; done
    # Whatever still runs inside our own namespaces was started by this test.
    for ns in "${all_ns[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    done
    wait 2>/dev/null
    for ns in "${all_ns[@]}"; do ip netns delete "$ns" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_logs() {
    local file
    for file in "$dir"/*.log "$dir"/hosts/*.log; do
        [ -f "$file" ] || continue
        echo "---- ${file#"$dir"/} (last 20 lines)" >&2
        tail -n 20 "$file" >&2
    done
}
fail() {
    echo "FAIL: $*" >&2
    show_logs
    exit 1
}

# ---- three hosts on a bridge -------------------------------------------------------------
ip netns add "$ns_bridge" 2>"$dir/ip.err" ||
    skip "cannot create a network namespace here: $(cat "$dir/ip.err")"
setup_network() {
    ip -n "$ns_bridge" link add br0 type bridge &&
        ip -n "$ns_bridge" link set br0 up || return 1
    local n=0 ns
    for ns in "$ns_a" "$ns_b" "$ns_c"; do
        n=$((n + 1))
        ip netns add "$ns" &&
            ip -n "$ns" link set lo up &&
            ip -n "$ns" link add eth0 type veth peer name port$n netns "$ns_bridge" &&
            ip -n "$ns_bridge" link set port$n master br0 up &&
            ip -n "$ns" address add 10.77.0.$n/24 dev eth0 &&
            ip -n "$ns" link set eth0 up || return 1
    done
}
setup_network 2>"$dir/ip.err" ||
    skip "cannot build the namespaces' network (bridge, veth): $(cat "$dir/ip.err")"

# ---- taskpipe run -S ---------------------------------------------------------------------
if [ "$mode" = run ]; then
    tasks=200
    for ((i = 0; i < tasks; i++)); do echo 20; done >"$dir/tasks"
    run_status=0
    # The ventilator and the sink listen in A on ports of their choosing; the workers reach them
    # at A's address.
    timeout 90 ip netns exec "$ns_a" "$taskpipe" run -S "$ns_b,$ns_c" \
        --ssh 'ip netns exec {} sh -c' --server "$server" --remote-worker "$worker_bin" \
        -j 2 --heartbeat 0.5 --jsonl --builtin sleep <"$dir/tasks" >"$dir/results.jsonl" \
        2>"$dir/run.log" || run_status=$?
    problems=()
    [ "$run_status" -eq 0 ] || problems+=("taskpipe run exited $run_status, not 0")
    grep -o '"id":[0-9]*' "$dir/results.jsonl" | cut -d: -f2 | sort -n | uniq -c >"$dir/id_counts"
    lines=$(wc -l <"$dir/results.jsonl")
    [ "$lines" -eq "$tasks" ] || problems+=("$lines result lines for $tasks tasks")
    [ "$(wc -l <"$dir/id_counts")" -eq "$tasks" ] || problems+=("not every id has a result")
    [ "$(awk '$1 != 1' "$dir/id_counts" | wc -l)" -eq 0 ] || problems+=("ids with two results")
    ok=$(grep -c '"status":"ok"' "$dir/results.jsonl")
    [ "$ok" -eq "$tasks" ] || problems+=("$ok results ok, of $tasks")
    # A runs no worker; B and C one each (the namespaces share a host name: count the pids).
    workers=$(grep -o '"worker":"[^"]*"' "$dir/results.jsonl" | sort -u | wc -l)
    [ "$workers" -eq 2 ] || problems+=("results from $workers workers, not 2 (B and C)")
    grep -q 'workers started on 2 of 2 hosts' "$dir/run.log" ||
        problems+=("the launcher did not report both hosts started")
    for ns in "$ns_b" "$ns_c"; do
        left=$(ip netns pids "$ns" 2>/dev/null | wc -l)
        [ "$left" -eq 0 ] || problems+=("$left processes left in $ns after the run")
    done
    echo "$tasks tasks: $lines results, $ok ok, from $workers workers; taskpipe run $run_status"
    if [ ${#problems[@]} -gt 0 ]; then
        printf 'FAIL: %s\n' "${problems[@]}" >&2
        show_logs
        exit 1
    fi
    echo "PASS: run"
    exit 0
fi

# ---- the batch -----------------------------------------------------------------------------
# Tasks for `--builtin sleep`: each line is a number of milliseconds.
if [ "$mode" = batch ]; then
    tasks=200 task_ms=20 cut_after=0
else
    tasks=400 task_ms=25 cut_after=60
fi
for ((i = 0; i < tasks; i++)); do echo "$task_ms"; done >"$dir/tasks"

ip netns exec "$ns_a" "$sink_bin" --bind 'tcp://*:5558' --control tcp://127.0.0.1:5559 --jsonl \
    >"$dir/results.jsonl" 2>"$dir/sink.log" &
sink_pid=$!

mkdir "$dir/hosts"
"$launcher" --ssh 'ip netns exec {} sh -c' -H "$ns_b,$ns_c" --server "$server" \
    --worker "$worker_bin" -c 2 --log-dir "$dir/hosts" --start-timeout 20 --stop-timeout 20 \
    -- --heartbeat 0.5 --builtin sleep 2>"$dir/launcher.log" &
launcher_pid=$!
launcher_says() { grep -q "$1" "$dir/launcher.log"; }
wait_for 25 "the launcher to start both workers" launcher_says '^taskpipe-hosts: workers started' ||
    fail "the launcher did not start the workers"
launcher_says "^taskpipe-hosts: workers started on 2 of 2 hosts" ||
    fail "the launcher did not start a worker on both hosts"

worker_pid() {  # the pid the launcher's remote wrapper reported for namespace $1
    sed -n 's/^taskpipe-hosts: worker started, pid \([0-9]*\)$/\1/p' "$dir/hosts/$1.log" | head -n 1
}
pid_b=$(worker_pid "$ns_b")
pid_c=$(worker_pid "$ns_c")
if [ -z "$pid_b" ] || [ -z "$pid_c" ]; then fail "no worker pid in the launcher's host logs"; fi

# A liveness timeout of 2 s is shorter than the 5 s after which ZMTP heartbeats close the
# connection to a cut-off host; until then the ventilator's PUSH socket may send a task's
# re-sends into that dead connection again, each one an attempt. Enough attempts to outlast it.
ip netns exec "$ns_a" "$ventilator_bin" --bind 'tcp://*:5557' --sink tcp://127.0.0.1:5559 \
    --liveness-timeout 2 --max-attempts 10 <"$dir/tasks" 2>"$dir/ventilator.log" &
ventilator_pid=$!

results_in() { [ "$(wc -l <"$dir/results.jsonl")" -ge "$1" ]; }
if [ "$mode" = cutoff ]; then
    wait_for 30 "$cut_after results before cutting host C off" results_in "$cut_after" ||
        fail "the batch did not get going"
    if [ "$cut_tool" = nft ]; then
        ip netns exec "$ns_c" nft -f - <<'EOF' || fail "nft could not cut host C off"
table inet taskpipe_cut {
    chain input { type filter hook input priority 0; policy drop; }
    chain output { type filter hook output priority 0; policy drop; }
}
EOF
    else
        { ip netns exec "$ns_c" iptables -A INPUT -j DROP &&
            ip netns exec "$ns_c" iptables -A OUTPUT -j DROP; } ||
            fail "iptables could not cut host C off"
    fi
    at_cut=$(wc -l <"$dir/results.jsonl")
    echo "cut host C off ($cut_tool) with $at_cut of $tasks results in"
fi

wait_for 90 "the sink to finish the batch" gone "$sink_pid" || fail "the batch did not complete"
sink_status=0
wait "$sink_pid" || sink_status=$?
sink_pid=""
wait_for 10 "the ventilator to exit" gone "$ventilator_pid" || fail "the ventilator did not exit"
ventilator_status=0
wait "$ventilator_pid" || ventilator_status=$?
ventilator_pid=""

kill -TERM "$launcher_pid"
wait_for 30 "the launcher to stop the workers" gone "$launcher_pid" ||
    fail "the launcher did not stop the workers"
launcher_status=0
wait "$launcher_pid" || launcher_status=$?
launcher_pid=""

# ---- the checks ------------------------------------------------------------------------------
problems=()
[ "$sink_status" -eq 0 ] || problems+=("the sink exited $sink_status, not 0")
[ "$ventilator_status" -eq 0 ] || problems+=("the ventilator exited $ventilator_status, not 0")
[ "$launcher_status" -eq 0 ] || problems+=("the launcher exited $launcher_status, not 0")

# "every id from 1 to the input's length has a result", each exactly once.
grep -o '"id":[0-9]*' "$dir/results.jsonl" | cut -d: -f2 | sort -n | uniq -c >"$dir/id_counts"
lines=$(wc -l <"$dir/results.jsonl")
distinct=$(wc -l <"$dir/id_counts")
duplicated=$(awk '$1 != 1' "$dir/id_counts" | wc -l)
out_of_range=$(awk -v n="$tasks" '$2 < 1 || $2 > n' "$dir/id_counts" | wc -l)
ok=$(grep -c '"status":"ok"' "$dir/results.jsonl")
[ "$lines" -eq "$tasks" ] || problems+=("$lines result lines for $tasks tasks")
[ "$distinct" -eq "$tasks" ] || problems+=("$distinct distinct ids for $tasks tasks")
[ "$duplicated" -eq 0 ] || problems+=("$duplicated ids with more than one result")
[ "$out_of_range" -eq 0 ] || problems+=("$out_of_range ids outside 1..$tasks")
[ "$ok" -eq "$tasks" ] || problems+=("$ok results with status ok, of $tasks")

# Both hosts did work: the worker field is host:pid, and the namespaces share one hostname.
by_worker_pid() { grep -c "\"worker\":\"[^\"]*:$1\"" "$dir/results.jsonl"; }
done_b=$(by_worker_pid "$pid_b")
done_c=$(by_worker_pid "$pid_c")
[ "$done_b" -gt 0 ] || problems+=("host B (worker pid $pid_b) has no result")
[ "$done_c" -gt 0 ] || problems+=("host C (worker pid $pid_c) has no result")
[ $((done_b + done_c)) -eq "$lines" ] || problems+=("results from workers other than B's and C's")
if [ "$mode" = cutoff ]; then
    grep -q 're-sending task' "$dir/ventilator.log" ||
        problems+=("the ventilator re-sent nothing: the cut-off did not hit host C's tasks")
fi

echo "$tasks tasks: $lines results, $ok ok, host B $done_b, host C $done_c;" \
    "sink $sink_status, ventilator $ventilator_status, launcher $launcher_status"
if [ "$mode" = cutoff ]; then
    echo "re-sent after the cut: $(grep -c 're-sending task' "$dir/ventilator.log"), most attempts" \
        "for one task: $(grep -o '"attempt":[0-9]*' "$dir/results.jsonl" | cut -d: -f2 | sort -n | tail -n 1)"
fi
if [ ${#problems[@]} -gt 0 ]; then
    printf 'FAIL: %s\n' "${problems[@]}" >&2
    show_logs
    exit 1
fi
echo "PASS: $mode"
