#!/bin/sh
# Installs what taskpipe needs to build and test on Debian 12, from Debian's own packages.
# Run as root, or as a user who may use sudo.
set -eu

packages="build-essential cmake git pkg-config
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libboost-program-options-dev nlohmann-json3-dev
  libsqlite3-dev
  libgtest-dev clang-format curl help2man man-db file
  python3 python3-zmq python3-msgpack python3-pytest
  python3-django python3-aiosmtpd imagemagick
  iproute2 nftables procps"

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
else
    as_root="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update -qq
# shellcheck disable=SC2086  # the package list is meant to split
$as_root apt-get install -y -qq --no-install-recommends $packages >/dev/null
echo "install-deps: done"
