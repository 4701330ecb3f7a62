# `cpack -G DEB` (run in the build directory): a Debian package of what `cmake --install`
# installs, under /usr. Its dependencies are Debian's runtime libraries, found by
# dpkg-shlibdeps from the programs themselves; its scripts create the taskpipe user for the
# systemd units and tell systemd about them.
set(TASKPIPE_PACKAGE_MAINTAINER "taskpipe maintainers <taskpipe@localhost>" CACHE STRING
  "The Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME taskpipe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "brokerless task pipeline on ZeroMQ, like GNU parallel over many hosts")
set(CPACK_PACKAGE_DESCRIPTION
  "A ventilator reads tasks, one per line; workers on any number of hosts run them; a sink
writes each task's output exactly once and exits with a status a script can trust. No
broker, no task lost when a worker dies. `taskpipe run` is the whole pipeline on one host in
one command, with GNU parallel's replacement strings, -k, --tag, --joblog and --resume.
Includes systemd units for workers that stay up.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${TASKPIPE_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# taskpipe run -S and taskpipe hosts reach other hosts with ssh.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS openssh-client)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS parallel)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
