#!/bin/bash
# Boot the guest once under QEMU TCG (no KVM needed): swtpm as its TPM 2.0 (TIS), virtio-blk
# root on a qcow2 overlay (kept between boots, so a second boot sees the first one's state),
# 9p shares IN (read-only, /mnt/in) and OUT (/mnt/out), no network, serial console to LOG
# with host timestamps. The guest powers itself off when its test unit is done.
# MSCE_SYSTEM_ARCH=arm64 boots an aarch64 guest instead (-M virt -cpu max under TCG, the TPM
# as a tpm-tis-device on the virt machine, console ttyAMA0). MSCE_SYSTEM_SRC, when set, is a
# third 9p share (tag src, read-write): the checkout whose build directory the guest runs tests from.
# Usage: run-vm.sh IMAGE_DIR DISK IN OUT TPM_STATE_DIR LOG
# Exit: QEMU's status (124 on timeout, MSCE_SYSTEM_BOOT_TIMEOUT seconds, default 480).
set -uo pipefail
image=$1 disk=$2 in=$3 out=$4 tpm=$5 log=$6
timeout=${MSCE_SYSTEM_BOOT_TIMEOUT:-480}
mkdir -p "$tpm" "$out"
# the swtpm control socket: keep the path short (sun_path holds 108 bytes)
sock=$tpm/sock
rm -f "$sock"
start=${EPOCHREALTIME/./}

# The TPM state directory persists across boots like a real TPM's NV memory. --terminate:
# swtpm exits when QEMU closes the control channel.
swtpm socket --tpm2 --tpmstate dir="$tpm" --ctrl type=unixio,path="$sock" \
        --log file="$tpm/swtpm.log",level=1 --terminate &
swtpm_pid=$!
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
if [ ! -S "$sock" ]; then
        echo "swtpm did not create $sock" >&2
        kill "$swtpm_pid" 2>/dev/null
        exit 1
fi

stamp() {
        local line d
        while IFS= read -r line; do
                d=$(( ${EPOCHREALTIME/./} - start ))
                printf '[%4d.%03d] %s\n' $((d / 1000000)) $(((d / 1000) % 1000)) "${line%$'\r'}"
        done
}

# amd64: TCG with one host thread for both vCPUs. With a thread each (MTTCG, QEMU 7.2) a Debian
# 13 guest once panicked 2 s into boot: "Oops: int3" at sched_clock_cpu+0x9, where the kernel
# was patching a static branch through a transient int3 (text_poke_bp). The other vCPU ran the
# int3 after the patch was complete and its handler gone: a stale translation of code another
# vCPU had modified. One thread makes that invalidation synchronous. (arm64 patches its text
# under stop_machine, with every other CPU parked.)
case ${MSCE_SYSTEM_ARCH:-amd64} in
amd64) machine=(qemu-system-x86_64 -machine q35 -cpu max -m 1024 -accel tcg,thread=single) console=ttyS0 tis=tpm-tis ;;
# pauth-impdef: QEMU's own pointer-authentication hash, much cheaper to emulate than the
# architected one; 2 GiB: the integration suite runs beside the agent
arm64) machine=(qemu-system-aarch64 -machine virt -cpu max,pauth-impdef=on -m 2048 -accel tcg) console=ttyAMA0 tis=tpm-tis-device ;;
*) echo "run-vm.sh: no machine for MSCE_SYSTEM_ARCH=$MSCE_SYSTEM_ARCH" >&2; exit 2 ;;
esac
src=()
[ -z "${MSCE_SYSTEM_SRC:-}" ] ||
        src=(-virtfs local,path="$MSCE_SYSTEM_SRC",mount_tag=src,security_model=none)

timeout "$timeout" "${machine[@]}" -smp 2 \
        -nographic -no-reboot -nic none \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
        -append "console=$console root=/dev/vda rw panic=-1 loglevel=4 systemd.show_status=true" \
        -drive file="$disk",format=qcow2,if=virtio,cache=unsafe \
        -chardev socket,id=chrtpm,path="$sock" \
        -tpmdev emulator,id=tpm0,chardev=chrtpm -device $tis,tpmdev=tpm0 \
        -virtfs local,path="$in",mount_tag=in,security_model=none,readonly=on \
        -virtfs local,path="$out",mount_tag=out,security_model=none "${src[@]}" \
        -device virtio-rng-pci \
        < /dev/null 2>&1 | stamp > "$log"
rc=${PIPESTATUS[0]}
kill "$swtpm_pid" 2>/dev/null
wait "$swtpm_pid" 2>/dev/null
d=$(( ${EPOCHREALTIME/./} - start ))
echo "boot: qemu exit $rc after $((d / 1000000)).$(((d / 100000) % 10)) s$(
        grep -m1 'Reached target.*Multi-User' "$log" | sed 's/^\[ *\([0-9.]*\)\].*/, multi-user at \1 s/')"
exit "$rc"
