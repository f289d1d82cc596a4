#!/bin/bash
# Build the msce .rpms from this checkout with packaging/rpm/msce.spec into OUTDIR.
# rpmbuild runs in a scratch _topdir; the source tarball is made from the working tree (build
# directories and .git left out). On Debian the rpm database knows none of the build
# dependencies, hence --nodeps: the spec's BuildRequires are for rpm-based distributions.
# Then rpmlint (configuration and its filters, each with a reason: packaging/rpm/rpmlint.toml)
# checks the spec and the packages into OUTDIR/rpmlint.txt: an error or a warning fails.
# Usage: packaging/build-rpm.sh OUTDIR [--no-rpmlint]
# Exit 0 when the build (with %check: the unit suite) succeeded and rpmlint reported nothing.
set -euo pipefail
out=${1:?usage: build-rpm.sh OUTDIR [--no-rpmlint]}
run_rpmlint=1
[ "${2:-}" = --no-rpmlint ] && run_rpmlint=0
src=$(cd "$(dirname "$0")/.." && pwd)
spec=$src/packaging/rpm/msce.spec
mkdir -p "$out"
out=$(cd "$out" && pwd)
# nothing stale: a failed build leaves no .rpms behind
rm -f "$out"/*.rpm "$out"/rpmlint.txt "$out"/build.log

scratch=$(mktemp -d /tmp/msce-rpm.XXXXXX)
trap 'rm -rf --one-file-system "$scratch"' EXIT
version=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
mkdir -p "$scratch"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
tar -C "$src" -c --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude=./.demo \
        --exclude=./debian --exclude='./obj-*' --transform "s,^\\.,msce-$version," . |
        gzip -n > "$scratch/SOURCES/msce-$version.tar.gz"
cp "$spec" "$scratch/SPECS/"
cp "$src/packaging/rpm/msce.preset" "$scratch/SOURCES/"

t0=$SECONDS
rpmbuild -bb --nodeps --define "_topdir $scratch" "$scratch/SPECS/msce.spec" > "$scratch/build.log" 2>&1 || {
        cp "$scratch/build.log" "$out/build.log"
        tail -n 60 "$scratch/build.log"
        echo "rpmbuild failed" >&2
        exit 1
}
echo "rpmbuild: $((SECONDS - t0)) s"
find "$scratch/RPMS" -name '*.rpm' -exec cp {} "$out/" \;
cp "$scratch/build.log" "$out/build.log"
for r in "$out"/*.rpm; do
        echo "== $(basename "$r")"
        rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\n' "$r"
        rpm -qlp "$r"
done

[ $run_rpmlint = 1 ] || exit 0
# rpmlint exits non-zero on errors only; its summary line counts the warnings too
rpmlint -c "$src/packaging/rpm/rpmlint.toml" "$spec" "$out"/*.rpm > "$out/rpmlint.txt" 2>&1 || true
grep -E ': [EW]: |checked;' "$out/rpmlint.txt" || cat "$out/rpmlint.txt"
grep -q ' 0 errors, 0 warnings' "$out/rpmlint.txt" || { echo "rpmlint reported errors or warnings" >&2; exit 1; }
