# SPDX-License-Identifier: MIT
# Sourced first by the bench scripts (bash, "$@" as the script got it): strict mode, a line
# saying where the script failed, and the script run again in a throwaway session keyring of its
# own, where every key it or its agents file lands; stderr joins stdout (keyctl's "Joined
# session keyring" is dropped, nothing else).
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "$(basename "$0"): failed at line $LINENO" >&2' ERR
if [ -z "${MSCE_BENCH_IN_SESSION:-}" ]; then
        MSCE_BENCH_IN_SESSION=1 exec keyctl session - bash -c 'exec 2>&3 3>&-; exec bash "$0" "$@"' \
                "$0" "$@" 3>&1 2>/dev/null
fi
# bench_need_root WHY: skip (exit 77) unless root
bench_need_root() { [ "$(id -u)" = 0 ] || { echo "needs root ($1): skipped"; exit 77; }; }
