#!/usr/bin/env bash
# Restore-to-keys-loaded: open the sealed Long Term Key and put it into a session keyring,
# msce (seal_load + add_key, tests/bench/bench-restore.c) against the stock tools doing the
# same job, median of N runs each:
#   host key: systemd-creds decrypt (host key)           | keyctl padd
#   TPM:      tpm2_createprimary + tpm2_load + tpm2_unseal | keyctl padd   (swtpm, no RM)
# "in-process" is the restore inside a running agent; "process" includes starting a program,
# as the stock pipelines do. The TPM rows are skipped without swtpm / tpm2-tools.
#   usage: bench-restore.sh PATH/TO/bench-restore [N]      (N default 50, or $BENCH_N)
. "$(dirname "$0")/bench-session.sh"

tool=$1
n=${2:-${BENCH_N:-50}}
export TSS2_LOG=all+none

work=$(mktemp -d /tmp/msce-bench-XXXXXX)
swtpm_pid=
cleanup() {
        if [ -n "$swtpm_pid" ]; then kill "$swtpm_pid" 2>/dev/null || true; fi
        rm -rf "$work"
}
trap cleanup EXIT

# median of N timed runs of "$@" (a shell function), in ms. A function that times itself
# (to leave out housekeeping) sets measured_us.
median_ms() {
        local i t0 t1 times=()
        for ((i = 0; i < n; i++)); do
                measured_us=
                t0=$(date +%s%N)
                "$@"
                t1=$(date +%s%N)
                times+=(${measured_us:-$(((t1 - t0) / 1000))})
                keyctl clear @s >/dev/null
        done
        printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.2f", a[int(NR / 2) + 1] / 1000 }'
}

# in-process figures from the tool: "median p10 p90" in us -> ms
ours_inproc() {
        "$tool" load "$1" "$2" "$n" | awk '{ printf "%.2f (p10 %.2f, p90 %.2f)", $1 / 1000, $2 / 1000, $3 / 1000 }'
}

row() { printf '%-52s %s ms\n' "$1" "$2"; }

head -c 32 /dev/urandom >"$work/ltk.bin"
echo "restore to keys loaded, median of $n runs"

# ---- host key ----
mkdir -m 0700 "$work/host" "$work/creds"
"$tool" store "$work/host" host
ours_host_once() { "$tool" once "$work/host" ""; }
row "msce host.key, in-process (seal_load + add_key)" "$(ours_inproc "$work/host" "")"
row "msce host.key, process" "$(median_ms ours_host_once)"

if command -v systemd-creds >/dev/null; then
        export SYSTEMD_CREDENTIAL_SECRET=$work/creds/credential.secret
        systemd-creds encrypt --with-key=host --name=ltk "$work/ltk.bin" "$work/ltk.cred"  
        stock_host() {
                systemd-creds decrypt --name=ltk "$work/ltk.cred" - 2>/dev/null | keyctl padd user msce:ltk @s >/dev/null
        }
        row "systemd-creds decrypt (host key) | keyctl padd" "$(median_ms stock_host)"
else
        echo "systemd-creds missing: stock host row skipped"
fi

# ---- TPM (swtpm) ----
if ! command -v swtpm >/dev/null || ! command -v tpm2_unseal >/dev/null; then
        echo "swtpm or tpm2-tools missing: TPM rows skipped"
        exit 0
fi
mkdir -m 0700 "$work/swtpm" "$work/tpm" "$work/stock"
# AF_UNIX sockets in the run's own directory (the TCTI's path=, the control socket PATH.ctrl):
# no TCP port to pick, so none another process could take first
sock=$work/swtpm/tpm
swtpm socket --tpm2 --server "type=unixio,path=$sock" --ctrl "type=unixio,path=$sock.ctrl" \
        --tpmstate "dir=$work/swtpm" --flags not-need-init,startup-clear --daemon --pid "file=$work/swtpm/pid"
swtpm_up() { [ -s "$work/swtpm/pid" ] && [ -S "$sock" ] && [ -S "$sock.ctrl" ]; }
for _ in $(seq 3000); do # 30 s: a deadline for a hang
        swtpm_up && break
        sleep 0.01
done
swtpm_up || { echo "swtpm did not start"; exit 1; }
swtpm_pid=$(cat "$work/swtpm/pid")
tcti="swtpm:path=$sock"
export TPM2TOOLS_TCTI=$tcti

"$tool" store "$work/tpm" tpm2 "$tcti"
ours_tpm_once() { "$tool" once "$work/tpm" "$tcti"; }
row "msce tpm2 (swtpm), in-process" "$(ours_inproc "$work/tpm" "$tcti")"
row "msce tpm2 (swtpm), process" "$(median_ms ours_tpm_once)"

s=$work/stock
tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb -c "$s/prim.ctx"
tpm2_create -Q -C "$s/prim.ctx" -i "$work/ltk.bin" -u "$s/seal.pub" -r "$s/seal.priv"
tpm2_flushcontext -t
# Without a resource manager (swtpm here) tpm2-tools leave every object they load in the TPM's
# 3 slots: flush between the steps, untimed (an RM does that work on a real system).
timed() { local a b; a=$(date +%s%N); "$@"; b=$(date +%s%N); measured_us=$((measured_us + (b - a) / 1000)); }
unseal_padd() { tpm2_unseal -c "$s/seal.ctx" | keyctl padd user msce:ltk @s >/dev/null; }
stock_tpm() {
        measured_us=0
        timed tpm2_createprimary -Q -C o -g sha256 -G ecc256:aes128cfb -c "$s/prim.ctx"
        tpm2_flushcontext -t
        timed tpm2_load -Q -C "$s/prim.ctx" -u "$s/seal.pub" -r "$s/seal.priv" -c "$s/seal.ctx"
        tpm2_flushcontext -t
        timed unseal_padd
        tpm2_flushcontext -t
}
row "tpm2_createprimary + tpm2_load + tpm2_unseal | padd" "$(median_ms stock_tpm)"
left=$(tpm2_getcap handles-transient)
[ -z "$left" ] || { echo "transient handles left: $left"; exit 1; }
