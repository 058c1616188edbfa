#!/usr/bin/env bash
# Downloads (here, where Debian's registry is reachable) the Debian packages the build needs
# on the GPU machine, which has CUDA, CMake and a compiler but no registry, into .debs/
# (ignored by git). scripts/device-check.sh unpacks them there into a private prefix.
#   scripts/fetch-device-debs.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build: headers, CMake packages, static FAISS
  libhdf5-dev libfaiss-dev libopenblas-dev libopenblas-pthread-dev libcli11-dev nlohmann-json3-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libaec-dev
  # run time: the shared libraries and what they load (HDF5 pulls in libcurl)
  libhdf5-103-1 libopenblas0 libopenblas0-pthread libgfortran5 libquadmath0
  libspdlog1.10 libfmt9 libbenchmark1debian libsz2 libaec0 zlib1g
  libcurl4 libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5 libssl3 libgssapi-krb5-2
  libldap-2.5-0 libzstd1 libbrotli1 libunistring2 libgnutls30 libhogweed6 libnettle8
  libgmp10 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libsasl2-2 libp11-kit0
  libtasn1-6 libkeyutils1 libffi8
)
mkdir -p .debs
cd .debs
rm -f ./*.deb
apt-get download "${packages[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
count=$(ls ./*.deb | wc -l)
if [[ $count -ne ${#packages[@]} ]]; then
  echo "fetch-device-debs: got $count of ${#packages[@]} packages" >&2
  exit 1
fi
echo "fetch-device-debs: $count packages, $(du -sh . | cut -f1) in .debs/ (carry it: carry=[\".debs\"])"
