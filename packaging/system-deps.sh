#!/usr/bin/env bash
# Installs the system packages syncagent and its tests need, on Debian/Ubuntu.
#   librsync2  the delta library (runtime)      rdiff   interop tests
#   rsync, rclone, unison                        benchmark peers (only with --bench)
# Installs with apt-get when run as root; otherwise says what to run.
set -euo pipefail
want=(librsync2 rdiff)
[ "${1:-}" = "--bench" ] && want+=(rsync rclone unison hyperfine)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "syncagent needs these system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
