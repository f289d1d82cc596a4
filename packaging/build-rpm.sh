#!/bin/bash
# Build the msce .rpms from this checkout with packaging/rpm/msce.spec into OUTDIR.
# rpmbuild runs in a scratch _topdir; the source tarball is made from the working tree (build
# directories and .git left out). On Debian the rpm database knows none of the build
# dependencies, hence --nodeps: the spec's BuildRequires are for rpm-based distributions.
# Usage: packaging/build-rpm.sh OUTDIR
set -euo pipefail
out=${1:?usage: build-rpm.sh OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
spec=$src/packaging/rpm/msce.spec
mkdir -p "$out"
out=$(cd "$out" && pwd)

scratch=$(mktemp -d /tmp/msce-rpm.XXXXXX)
trap 'rm -rf --one-file-system "$scratch"' EXIT
version=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
mkdir -p "$scratch"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
tar -C "$src" -c --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude=./.demo \
        --exclude=./debian --exclude='./obj-*' --transform "s,^\\.,msce-$version," . |
        gzip -n > "$scratch/SOURCES/msce-$version.tar.gz"
cp "$spec" "$scratch/SPECS/"

t0=$SECONDS
rpmbuild -bb --nodeps --define "_topdir $scratch" "$scratch/SPECS/msce.spec" > "$scratch/build.log" 2>&1 || {
        tail -n 60 "$scratch/build.log"
        echo "rpmbuild failed" >&2
        exit 1
}
echo "rpmbuild: $((SECONDS - t0)) s"
rm -f "$out"/*.rpm
find "$scratch/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
cp "$scratch/build.log" "$out/build.log"
for r in "$out"/*.rpm; do
        echo "== $(basename "$r")"
        rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\n' "$r"
        rpm -qlp "$r"
done
