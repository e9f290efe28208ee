#!/usr/bin/env bash
# Builds the Debian package of BUILD_DIR with CPack into a temporary directory, checks
# its metadata and contents, unpacks it (dpkg-deb -x, nothing is installed) and runs the
# unpacked `resnet --version` against the unpacked libraries.
# Usage: scripts/test_deb.sh BUILD_DIR   (ctest runs it as deb_package)
set -euo pipefail
build="$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >/dev/null
deb="$(ls "$tmp"/out/*.deb)"
echo "built $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"
dpkg-deb --field "$deb" Package Version Architecture Depends
dpkg-deb --field "$deb" Depends | grep -q "libdnnl"
dpkg-deb -c "$deb" > "$tmp/contents.txt"
for f in usr/bin/resnet usr/include/resnet/resnet.h usr/include/resnet/api/model.h \
         'usr/lib/.*libresnet\.a' 'usr/lib/.*libresnet\.so\.[0-9.]*$' \
         'usr/lib/.*cmake/resnet/resnetConfig\.cmake' 'usr/lib/.*pkgconfig/resnet\.pc'; do
  grep -q "\./$f" "$tmp/contents.txt" || { echo "missing from the package: $f" >&2; exit 1; }
done
if grep -q "include/resnet/ref/" "$tmp/contents.txt"; then
  echo "the package holds the test oracle's headers" >&2
  exit 1
fi
dpkg-deb -x "$deb" "$tmp/root"
libdir="$(dirname "$(find "$tmp/root" -name 'libresnet.so.*' -type f | head -n 1)")"
LD_LIBRARY_PATH="$libdir" "$tmp/root/usr/bin/resnet" --version
echo "deb: all passed"
