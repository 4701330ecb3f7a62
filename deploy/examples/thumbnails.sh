#!/bin/bash
# thumbnails.sh: the job taskpipe exists for, end to end on this host. Generates IMAGES
# pictures with ImageMagick, makes a quarter-size thumbnail of each through a whole pipeline
# (`taskpipe run`: a sink, a worker and a ventilator), then checks that every thumbnail exists
# and has the right size.
#
#   thumbnails.sh [-n IMAGES] [-j JOBS] [-d DIR]
#
#   -n IMAGES   pictures to generate (default 40); a few get names with spaces and quotes,
#               which reach convert as one argument each, byte for byte
#   -j JOBS     commands run at once (default: the number of CPUs)
#   -d DIR      work in DIR (created; kept afterwards) instead of a temporary directory
#
# Needs ImageMagick's convert and identify (Debian: apt-get install imagemagick) and taskpipe:
# the one in $TASKPIPE, else build/bin/taskpipe beside this script's directory, else the one in
# PATH. Exit status: 0 every thumbnail made; 1 some are missing or wrong; 2 usage error or a
# missing program. The same handler runs unchanged on many hosts: see docs/deploy.md.
set -eu -o pipefail

usage() {
    sed -n '7,13p' "$0" | sed 's/^# \{0,3\}//' >&2
    exit 2
}
images=40
jobs=""
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        -n) [ $# -ge 2 ] || usage; images=$2; shift 2 ;;
        -j) [ $# -ge 2 ] || usage; jobs=$2; shift 2 ;;
        -d) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
        -h | --help) usage ;;
        *) echo "thumbnails: unknown option '$1'" >&2; usage ;;
    esac
done
case "$images" in '' | *[!0-9]* | 0) echo "thumbnails: -n needs a positive number" >&2; exit 2 ;; esac
for program in convert identify; do
    command -v "$program" >/dev/null || {
        echo "thumbnails: ImageMagick's '$program' is not installed (Debian: apt-get install imagemagick)" >&2
        exit 2
    }
done

here=$(cd "$(dirname "$0")" && pwd)
taskpipe=${TASKPIPE:-}
if [ -z "$taskpipe" ] && [ -x "$here/../../build/bin/taskpipe" ]; then
    taskpipe=$here/../../build/bin/taskpipe
fi
: "${taskpipe:=$(command -v taskpipe || true)}"
[ -n "$taskpipe" ] || { echo "thumbnails: taskpipe is not installed (see README.md, Install)" >&2; exit 2; }
if [ -n "$dir" ]; then
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/thumbnails.XXXXXX")
    trap 'rm -rf "$dir"' EXIT
fi
rm -rf "$dir/images" "$dir/thumbs"
mkdir -p "$dir/images" "$dir/thumbs"

# One convert makes every picture: a random plasma each, 640x480.
echo "thumbnails: generating $images images in $dir/images" >&2
sources=()
for ((i = 0; i < images; i++)); do sources+=(plasma:); done
convert -size 640x480 "${sources[@]}" +adjoin "$dir/images/img-%03d.jpg"
# Names a shell would mangle: they still reach convert as one argument each.
cd "$dir/images"
[ ! -e img-001.jpg ] || mv img-001.jpg "holiday photo 1.jpg"
[ ! -e img-002.jpg ] || mv img-002.jpg "it's \$(not run) 2.jpg"

# The batch: one task per file name, NUL-separated; the worker runs, with no shell in between,
#   convert NAME -resize 25% THUMBS/NAME
# in this directory ({} is the task). The sink's --jsonl results go to results.jsonl.
start=$EPOCHREALTIME
status=0
find . -maxdepth 1 -name '*.jpg' -printf '%P\0' |
    "$taskpipe" run -0 --jsonl ${jobs:+-j "$jobs"} --file-names \
        -- convert {} -resize 25% "$dir/thumbs/{}" >"$dir/results.jsonl" || status=$?
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

# Every image has a 160x120 thumbnail.
made=0
bad=()
for image in *.jpg; do
    size=$(identify -format '%wx%h' "$dir/thumbs/$image" 2>/dev/null || true)
    if [ "$size" = 160x120 ]; then
        made=$((made + 1))
    else
        bad+=("$image")
    fi
done
results=$(wc -l <"$dir/results.jsonl")
ok=$(grep -c '"status":"ok"' "$dir/results.jsonl" || true)
echo "thumbnails: $images images, $made thumbnails of 160x120 in $dir/thumbs," \
    "$results results ($ok ok), ${elapsed} s; taskpipe run exited $status" >&2
if [ ${#bad[@]} -gt 0 ] || [ "$status" -ne 0 ]; then
    [ ${#bad[@]} -eq 0 ] || printf 'thumbnails: no good thumbnail for %s\n' "${bad[@]}" >&2
    grep -v '"status":"ok"' "$dir/results.jsonl" | head -n 5 >&2 || true
    exit 1
fi
