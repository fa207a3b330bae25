#!/usr/bin/env bash
# Installs the system packages syncagent and its tests need, on Debian/Ubuntu.
#   librsync2  the delta library (runtime)      rdiff   interop tests, bench_delta
#   gcc, pythonX.Y-dev, libsqlite3-dev   build syncagent/native (optional: without them the pure-Python
#                                        path runs)
#   --bench: rsync, rclone, unison               peers the benchmarks compare with (optional:
#                                                a benchmark leaves out a peer that is missing)
# Installs with apt-get when run as root; otherwise says what to run.
set -euo pipefail

missing() {
  local pkg out=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || out+=("$pkg")
  done
  echo "${out[@]:-}"
}

install() {
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || return 1
  echo "installing system packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null
}

required=$(missing librsync2 rdiff)
if [ -n "$required" ] && ! install $required; then
  echo "syncagent needs these system packages: $required" >&2
  echo "install them with: sudo apt-get install $required" >&2
  exit 1
fi

# The native speed-up of the no-op path is compiled by `pip install` (hatch_build.py) for the
# interpreter the virtualenv is made from ($PYTHON): it needs a C compiler and that Python's headers.
py=${PYTHON:-python3}
if include=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null); then
  build=()
  command -v cc >/dev/null || build+=(gcc)
  [ -e /usr/include/sqlite3.h ] || build+=(libsqlite3-dev)   # its base reader thread
  if [ ! -e "$include/Python.h" ]; then
    build+=("python$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev")
  fi
  if [ ${#build[@]} -gt 0 ] && ! install "${build[@]}"; then
    echo "note: ${build[*]} not installed: syncagent runs without its native speed-up" >&2
    echo "      (sudo apt-get install ${build[*]}, then make clean && make run)" >&2
  fi
fi

if [ "${1:-}" = "--bench" ]; then
  peers=$(missing rsync rclone unison)
  if [ -n "$peers" ] && ! install $peers; then
    echo "note: benchmark peers not installed ($peers): the benchmarks run without them" >&2
    echo "      (sudo apt-get install $peers)" >&2
  fi
fi
exit 0
