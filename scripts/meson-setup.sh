# SPDX-License-Identifier: MIT
# Sourced by scripts/test.sh and scripts/release/build-and-test.sh (bash): configure and build
# one build directory, quietly.
# setup DIR [MESON_ARGS...]: meson setup (--reconfigure when DIR is configured), then ninja; the
# whole log and exit 1 on a failure, else only the lines that mention a warning. With
# SETUP_TAG set, the summary's msce section too, each line tagged [SETUP_TAG].
setup() {
        local dir=$1 log
        shift
        log=$(mktemp)
        if [ -f "$dir/build.ninja" ]; then
                meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
        else
                meson setup "$dir" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
        fi
        [ -z "${SETUP_TAG:-}" ] || sed -n '/^  msce$/,/^$/p' "$log" | sed '/^$/d; s/^ */['"$SETUP_TAG"'] /'
        ninja -C "$dir" >"$log" 2>&1 || { cat "$log"; exit 1; }
        grep -i 'warning' "$log" || true
        rm -f "$log"
}
