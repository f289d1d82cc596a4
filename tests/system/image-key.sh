#!/bin/bash
# The cache key of the guest image for MSCE_SYSTEM_RELEASE (default bookworm) and
# MSCE_SYSTEM_ARCH (default amd64): a hash of both, of every file under image/ (build.sh,
# package lists, gpio-sim, guest units), and of scripts/debian-mirrors.sh, which build.sh sources.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
arch=${MSCE_SYSTEM_ARCH:-amd64}
{ echo "${MSCE_SYSTEM_RELEASE:-bookworm}${arch#amd64}"
  cd "$here/image" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  sha256sum ../../../scripts/debian-mirrors.sh; } | sha256sum | cut -c1-16
