# The TPM when the host's swtpm cannot reach the guest's kernel (sourced by systest.sh): Debian's
# arm64 kernel has no tpm_tis driver (CONFIG_TCG_TIS is off; tpm_crb is ACPI-only), so the virt
# machine's tpm-tis-device finds no driver. Instead swtpm runs in the guest behind the kernel's
# vTPM proxy (tpm_vtpm_proxy): /dev/tpm0 and /dev/tpmrm0 are the kernel's own TPM devices
# with its resource manager, backed by swtpm, its state on the guest's disk, so it persists
# across the reboot like the host-side one. A unit started before msce-agent at every boot.
# The kernel gives a TPM command 2 s (TPM2_SelfTest while it registers the chip); under TCG on
# a loaded host swtpm can take longer, the kernel then drops the chip and swtpm keeps running
# without one (seen on a boot 2: /dev/tpmrm0 never came, the agent could not unseal and the
# stand-in CSE held multi-user.target back). So swtpm is started again when no /dev/tpmrm0
# came 30 s after its start, up to 5 times, within one start job of the unit: a Restart= comes
# after the failed job, and msce-agent (ordered after it) has started without a TPM by then.

setup_vtpm() {
        echo "== no TPM device: swtpm behind the kernel's vTPM proxy"
        mkdir -p /var/lib/msce-systest/vtpm
        cat > /usr/local/sbin/msce-systest-vtpm <<'EOF'
#!/bin/sh
# swtpm behind the vTPM proxy, left running (Type=forking) once the kernel registered the chip
# and udev gave /dev/tpmrm0 its group (vtpm.sh says why it may take more than one start)
modprobe tpm_vtpm_proxy || exit 1
for attempt in 1 2 3 4 5; do
        swtpm chardev --vtpm-proxy --tpm2 --tpmstate dir=/var/lib/msce-systest/vtpm &
        pid=$!
        if timeout 30 sh -c 'until [ -e /dev/tpmrm0 ]; do sleep 0.2; done'; then
                udevadm settle --timeout=30
                echo "$pid" > /run/msce-systest-vtpm.pid
                exit 0
        fi
        echo "no /dev/tpmrm0 30 s after swtpm started (attempt $attempt): the kernel gave up on the chip; starting swtpm again"
        kill "$pid"
        wait "$pid"
done
exit 1
EOF
        chmod 0755 /usr/local/sbin/msce-systest-vtpm
        cat > /etc/systemd/system/msce-systest-vtpm.service <<'EOF'
[Unit]
Description=msce system test: swtpm as the TPM through the kernel's vTPM proxy
After=systemd-udevd.service local-fs.target
Before=msce-agent.service

[Service]
Type=forking
PIDFile=/run/msce-systest-vtpm.pid
ExecStart=/usr/local/sbin/msce-systest-vtpm
TimeoutStartSec=10min

[Install]
WantedBy=msce-agent.service
EOF
        systemctl daemon-reload
        systemctl enable msce-systest-vtpm.service 2>&1
        check "swtpm in the guest as its TPM (vTPM proxy): /dev/tpmrm0" systemctl start msce-systest-vtpm.service
}
