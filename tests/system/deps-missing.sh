#!/bin/bash
# Print the dependencies (Depends: lines on stdin, one package's per line) that no package in
# PACKAGES_LIST ("name version provides..." lines, from the image build) satisfies, by name or
# by Provides. Versions are not compared: the image and the build host use the same mirror.
# Usage: dpkg-deb -f X.deb Depends | deps-missing.sh PACKAGES_LIST
set -euo pipefail
awk '
NR == FNR {
        have[$1] = 1
        line = $0; sub(/^[^ ]+ [^ ]+ ?/, "", line); gsub(/\([^)]*\)/, "", line)
        n = split(line, p, /[ ,]+/)
        for (i = 1; i <= n; i++) if (p[i] != "") have[p[i]] = 1
        next
}
{
        n = split($0, deps, /,/)
        for (i = 1; i <= n; i++) {
                alts = deps[i]; gsub(/\([^)]*\)|\[[^]]*\]|<[^>]*>/, "", alts)
                m = split(alts, a, /\|/); ok = 0
                for (j = 1; j <= m; j++) {
                        name = a[j]; gsub(/[ \t]/, "", name); sub(/:.*/, "", name)
                        if (name == "" || name in have) ok = 1
                }
                if (!ok) { gsub(/^[ \t]+|[ \t]+$/, "", deps[i]); if (!(deps[i] in shown)) { shown[deps[i]] = 1; printf "%s%s", sep, deps[i]; sep = ", " } }
        }
}
END { if (sep != "") print "" }
' "$1" -
