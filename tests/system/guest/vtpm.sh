# The TPM when the host's swtpm cannot reach the guest's kernel (sourced by systest.sh): Debian's
# arm64 kernel has no tpm_tis driver (CONFIG_TCG_TIS is off; tpm_crb is ACPI-only), so the virt
# machine's tpm-tis-device finds no driver. Instead swtpm runs in the guest behind the kernel's
# vTPM proxy (tpm_vtpm_proxy): /dev/tpm0 and /dev/tpmrm0 are the kernel's own TPM devices
# with its resource manager, backed by swtpm, its state on the guest's disk, so it persists
# across the reboot like the host-side one. A unit started before msce-agent at every boot.
# The kernel gives a TPM command 2 s (TPM2_SelfTest while it registers the chip); under TCG on
# a loaded host swtpm can take longer, the kernel then drops the chip and swtpm keeps running
# without one (seen on a boot 2: /dev/tpmrm0 never came, the agent could not unseal and the
# stand-in CSE held multi-user.target back): no /dev/tpmrm0 in 30 s restarts swtpm.

setup_vtpm() {
        echo "== no TPM device: swtpm behind the kernel's vTPM proxy"
        mkdir -p /var/lib/msce-systest/vtpm
        cat > /etc/systemd/system/msce-systest-vtpm.service <<'EOF'
[Unit]
Description=msce system test: swtpm as the TPM through the kernel's vTPM proxy
After=systemd-udevd.service local-fs.target
Before=msce-agent.service
StartLimitIntervalSec=15min
StartLimitBurst=5

[Service]
ExecStartPre=/sbin/modprobe tpm_vtpm_proxy
ExecStart=/usr/bin/swtpm chardev --vtpm-proxy --tpm2 --tpmstate dir=/var/lib/msce-systest/vtpm
# ready once the kernel registered the chip and udev gave /dev/tpmrm0 its group
ExecStartPost=/bin/sh -c 'for i in $(seq 300); do [ -e /dev/tpmrm0 ] && exec udevadm settle --timeout=30; sleep 0.1; done; echo "no /dev/tpmrm0 30 s after swtpm started: the kernel gave up on the chip; restarting swtpm" >&2; exit 1'
Restart=on-failure
RestartSec=1s

[Install]
WantedBy=msce-agent.service
EOF
        systemctl daemon-reload
        systemctl enable msce-systest-vtpm.service 2>&1
        # a failed first start is retried by the unit itself (Restart=): judge the device
        systemctl start msce-systest-vtpm.service 2>&1
        check "swtpm in the guest as its TPM (vTPM proxy): /dev/tpmrm0" \
                await 300 "/dev/tpmrm0 and msce-systest-vtpm.service active" \
                sh -c '[ -e /dev/tpmrm0 ] && [ "$(systemctl is-active msce-systest-vtpm.service)" = active ]'
}
