#!/bin/bash
# `cmake --install BUILD --prefix DIR` (README "Install"): the programs, man pages, systemd units
# (naming the installed programs), the sysusers.d entry, bash completion and docs land under
# DIR, and the installed taskpipe runs a batch from another directory, finding its programs
# beside itself. No root needed: DIR is a temporary directory.
#
#   install_test.sh CMAKE BUILD_DIR MAN(ON|OFF)
set -u -o pipefail

[ $# -eq 3 ] || { echo "usage: $0 CMAKE BUILD_DIR MAN" >&2; exit 2; }
cmake=$1 build=$2 man=$3
dir=$(mktemp -d "${TMPDIR:-/tmp}/taskpipe-install.XXXXXX")
trap 'rm -rf "$dir"' EXIT
prefix=$dir/prefix

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

"$cmake" --install "$build" --prefix "$prefix" >"$dir/install.log" 2>&1 ||
    { cat "$dir/install.log" >&2; echo "FAIL: cmake --install" >&2; exit 1; }

for program in taskpipe taskpipe-ventilator taskpipe-worker taskpipe-sink taskpipe-submit \
    taskpipe-hosts taskpipe-keygen; do
    check "bin/$program is installed and executable" [ -x "$prefix/bin/$program" ]
done
for unit in taskpipe-worker@ taskpipe-sink@ taskpipe-ventilator@; do
    file=$prefix/lib/systemd/system/$unit.service
    program=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$file" 2>/dev/null)
    check "$unit.service runs ${unit%@} from the prefix" \
        [ "$program" = "$prefix/bin/${unit%@}" ]
done
check "the sysusers.d entry makes the taskpipe user" \
    grep -q '^u taskpipe ' "$prefix/lib/sysusers.d/taskpipe.conf"
check "bash completion" [ -f "$prefix/share/bash-completion/completions/taskpipe" ]
check "README and docs" test -f "$prefix/share/doc/taskpipe/README.md" \
    -a -f "$prefix/share/doc/taskpipe/deploy.md" \
    -a -f "$prefix/share/doc/taskpipe/examples/worker.env.example"
if [ "$man" = ON ]; then
    for page in taskpipe taskpipe-run taskpipe-ventilator taskpipe-worker taskpipe-sink \
        taskpipe-submit taskpipe-hosts taskpipe-keygen; do
        check "man page $page(1)" [ -f "$prefix/share/man/man1/$page.1.gz" ]
    done
    if command -v man >/dev/null; then
        check "man -w taskpipe-run finds it" \
            [ "$(MANPATH="$prefix/share/man" man -w taskpipe-run 2>/dev/null)" = \
            "$prefix/share/man/man1/taskpipe-run.1.gz" ]
    fi
fi

# The installed copy runs a batch from elsewhere with nothing in PATH: it finds taskpipe-sink
# and the others beside itself.
mkdir "$dir/elsewhere"
# shellcheck disable=SC2016  # $1 is the task, for the worker's sh
output=$(cd "$dir/elsewhere" && seq 1 5 |
    env PATH=/nonexistent "$prefix/bin/taskpipe" run -k --shell 'echo "task $1"' 2>"$dir/run.err")
status=$?
check "the installed taskpipe run exits 0" [ "$status" -eq 0 ]
check "and writes every result in order" [ "$output" = "$(printf 'task %s\n' 1 2 3 4 5)" ]

# Bash completion from the installed file: commands, then a command's options from its --help.
complete_words() {  # complete_words WORD...: COMPREPLY for the last word, one per line
    # shellcheck disable=SC2016  # expanded by the inner bash
    env PATH="$prefix/bin:/usr/bin:/bin" bash -c '
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _taskpipe
        printf "%s\n" "${COMPREPLY[@]}"' _ "$prefix/share/bash-completion/completions/taskpipe" "$@"
}
check "completion: taskpipe r<TAB> gives run" [ "$(complete_words taskpipe r)" = run ]
check "completion: taskpipe run --jo<TAB> gives --jobs and --joblog" \
    [ "$(complete_words taskpipe run --jo | sort | tr '\n' ' ')" = "--joblog --jobs " ]
check "completion: taskpipe help w<TAB> gives worker" [ "$(complete_words taskpipe help w)" = worker ]
check "completion: taskpipe su<TAB> gives submit" [ "$(complete_words taskpipe su)" = submit ]
check "completion: taskpipe submit --ca<TAB> gives --cancel" \
    [ "$(complete_words taskpipe submit --ca)" = --cancel ]

if [ "$failures" -gt 0 ]; then
    cat "$dir/run.err" >&2
    exit 1
fi
echo "PASS"
