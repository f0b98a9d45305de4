#!/usr/bin/env bash
# The plugin's QGIS tests on a newer Debian's QGIS, in a chroot built once and cached outside the clone.
#
#   scripts/debian_qgis.sh trixie   # Debian 13: QGIS 3.40 LTR, Python 3.13, numpy 2.2, GDAL 3.10
#   scripts/debian_qgis.sh sid      # Debian unstable: QGIS 3.44 LTR
#   scripts/debian_qgis.sh trixie tests/test_processing.py -k date    # other pytest arguments
#   scripts/debian_qgis.sh trixie run .venv/bin/python scripts/help_screenshot.py   # any command there
#
# The chroot has Debian's QGIS and nothing of LST Fusion's Python dependencies: as a user would, the
# plugin's installer (lst_fusion_plugin/installer.py, run by QGIS's own Python) installs numba, ONNX
# Runtime, Dask, torch, onnx and the STAC clients from the package index into a fresh profile's package
# folder, and the tests then run on what it installed (the Processing algorithms, qgis_process, the packaged zip in a
# fresh profile, QGIS desktop under Xvfb). The cache (LST_FUSION_CHROOT_CACHE, default
# /var/cache/lst-fusion) keeps the chroot; each run starts from a fresh copy of this working tree and a
# fresh profile. Needs root (debootstrap, chroot, bind mounts); unmounts whatever it mounted.
set -euo pipefail
suite="${1:-trixie}"
shift || true
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${LST_FUSION_CHROOT_CACHE:-/var/cache/lst-fusion}"
root="$cache/$suite"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Debian's torch and onnx (torch's CPU package index is not reachable from every machine; PyPI's torch is
# the CUDA build): the installer finds them and installs what is still missing, the fusion packages.
packages=(qgis python3-qgis qgis-providers python3-rasterio python3-scipy python3-matplotlib python3-venv
          python3-pip xvfb xauth ca-certificates python3-torch python3-onnx make e2fsprogs
          gdal-bin time)  # the last two: bench/bench_resample.py's gdalwarp baseline
# Tests only (the plugin needs none of them): pinned as in requirements.txt.
test_tools=(pytest==9.2.0 pytest-qgis==5.0.2 hypothesis==6.170.17)
# The tests that exercise QGIS itself (Processing, qgis_process, the packaged zip, the desktop, saved models).
tests=(tests/test_processing.py tests/test_preprocessing_algorithms.py tests/test_fusion_algorithm.py
       tests/test_qgis_headless.py tests/test_parameter_contract.py tests/test_units_and_styles.py
       tests/test_extension_points.py tests/test_installer.py tests/test_acquire.py)

[ "$(id -u)" = 0 ] || { echo "debian_qgis.sh needs root (debootstrap, chroot, mounts): sudo $0 $suite" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo ">> apt: installing debootstrap"; apt-get install -y -qq debootstrap; }

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind SOURCE TARGET [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
bind_file() {  # bind_file SOURCE TARGET: read-only, over the chroot's own file
  mkdir -p "$(dirname "$2")"
  [ -e "$2" ] || touch "$2"
  mount --bind "$1" "$2"
  mounted+=("$2")
  mount -o remount,bind,ro "$2"
}
system_mounts() {
  for d in proc sys dev dev/pts; do bind "/$d" "$1/$d"; done
}
pip_mounts() {  # after apt: ca-certificates rewrites the bundle these cover
  # pip inside reaches the package index as this machine does: its CA bundle, pip configuration and
  # local wheel folders (a proxy's certificate, a mirror).
  [ ! -f /etc/ssl/certs/ca-certificates.crt ] || bind_file /etc/ssl/certs/ca-certificates.crt \
    "$1/etc/ssl/certs/ca-certificates.crt"
  [ ! -f /etc/pip.conf ] || bind_file /etc/pip.conf "$1/etc/pip.conf"
  [ ! -f "$HOME/.config/pip/pip.conf" ] || bind_file "$HOME/.config/pip/pip.conf" "$1/root/.config/pip/pip.conf"
  local d confs=(/etc/pip.conf "$HOME/.config/pip/pip.conf")
  for d in $({ printf '%s\n' ${PIP_FIND_LINKS:-}; grep -hso 'file://[^ ]*' "${confs[@]}" | sed 's|^file://||'
               sed -ns 's|^find-links *= *||p' "${confs[@]}" 2>/dev/null; } | tr ' ' '\n' | sed 's|/simple/*$||' |
             grep '^/' | sort -u); do
    [ ! -d "$d" ] || bind "$d" "$1$d" ro
  done
}
in_chroot() {  # in_chroot ROOT COMMAND…
  local where="$1"; shift
  chroot "$where" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
    PIP_FIND_LINKS="${PIP_FIND_LINKS:-}" PIP_INDEX_URL="${PIP_INDEX_URL:-}" \
    PIP_EXTRA_INDEX_URL="${PIP_EXTRA_INDEX_URL:-}" PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-60}" \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    DEBIAN_FRONTEND=noninteractive QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/xdg CI="${CI:-}" \
    PYTHONPATH="${PYTHONPATH_IN_CHROOT:-}" LST_FUSION_PACKAGES="${PACKAGES_IN_CHROOT:-}" "$@"
}

if [ ! -f "$root/.lst-fusion-ready" ]; then
  echo ">> building the $suite chroot in $root (once; debootstrap, then Debian's QGIS)"
  mkdir -p "$cache"
  # Steps leave a mark, so an interrupted build resumes where it stopped.
  if [ ! -f "$root.tmp/.step-debootstrap" ]; then
    rm -rf "$root.tmp"
    debootstrap --variant=minbase "$suite" "$root.tmp" "$mirror" >/dev/null
    touch "$root.tmp/.step-debootstrap"
  fi
  system_mounts "$root.tmp"
  if [ ! -f "$root.tmp/.step-apt" ]; then
    # A mirror may serve a snapshot whose Release file has passed its Valid-Until date (sid's does here);
    # its signatures are still checked.
    in_chroot "$root.tmp" apt-get -o Acquire::Check-Valid-Until=false update -qq
    in_chroot "$root.tmp" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    in_chroot "$root.tmp" apt-get clean
    touch "$root.tmp/.step-apt"
  fi
  pip_mounts "$root.tmp"
  in_chroot "$root.tmp" python3 -m venv --system-site-packages /opt/test-tools
  in_chroot "$root.tmp" /opt/test-tools/bin/pip install -q "${test_tools[@]}"
  cleanup
  mounted=()
  touch "$root.tmp/.lst-fusion-ready"
  rm -rf "$root"
  mv "$root.tmp" "$root"
fi
missing=$(chroot "$root" dpkg-query -W -f='${Status} ${Package}\n' "${packages[@]}" 2>&1 | grep -v '^install ok installed' |
          awk '{print $NF}' || true)
if [ -n "$missing" ]; then
  echo ">> apt in the $suite chroot: $missing"
  system_mounts "$root"
  in_chroot "$root" apt-get -o Acquire::Check-Valid-Until=false update -qq
  in_chroot "$root" apt-get install -y -qq --no-install-recommends $missing >/dev/null
  in_chroot "$root" apt-get clean
  cleanup
  mounted=()
fi
in_chroot "$root" /usr/bin/qgis_process.bin --version 2>/dev/null | grep -m1 QGIS || true

# A fresh copy of the working tree (git's files, tracked or not ignored) and a fresh profile.
work="$root/work"
rm -rf "$work/main" "$root/root/.local/share/QGIS"
mkdir -p "$work/main"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$repo" ls-files -co --exclude-standard -z | tar -C "$repo" --null -T - -cf - | tar -C "$work/main" -xf -
else  # an exported tree: everything but what make builds
  tar -C "$repo" --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./demo_output -cf - . |
    tar -C "$work/main" -xf -
fi
[ ! -d "$repo/../shared" ] || bind "$(cd "$repo/../shared" && pwd)" "$work/shared" ro
system_mounts "$root"
pip_mounts "$root"
python_version=$(in_chroot "$root" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
target="/root/.local/share/QGIS/QGIS3/profiles/default/python/lst_fusion_packages-py$python_version"
in_chroot "$root" /usr/bin/python3 -c 'import importlib.util as u, sys
found = [m for m in ("numba", "onnxruntime", "dask", "pystac_client") if u.find_spec(m)]
sys.exit(f"the chroot already has {found}: the installer test needs a QGIS without them" if found else 0)'
echo ">> the plugin's installer, with QGIS's Python 3 ($python_version), into a fresh profile: $target"
in_chroot "$root" /usr/bin/python3 /work/main/lst_fusion_plugin/installer.py --group fusion --group training \
  --group acquire --target "$target"
ln -sfn /opt/test-tools "$work/main/.venv"
if [ "${1:-}" = run ]; then
  shift
  command=("$@")
  echo ">> on $suite's QGIS, in $work/main: ${command[*]}"
else
  [ $# -gt 0 ] || set -- "${tests[@]}"
  command=(.venv/bin/python -m pytest -p no:cacheprovider "$@")
  echo ">> tests on $suite's QGIS: ${command[*]:4}"
fi
PYTHONPATH_IN_CHROOT="$target" PACKAGES_IN_CHROOT="$target" \
  in_chroot "$root" /bin/bash -c 'mkdir -p /tmp/xdg && chmod 700 /tmp/xdg && cd /work/main &&
    .venv/bin/python scripts/build_plugin.py stage >/dev/null && "$@"' run "${command[@]}"
