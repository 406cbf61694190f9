#!/bin/bash
# The lab's node image: a minimal Debian with systemd, sshd and the real LB services the plan runs
# (haproxy, keepalived), plus python3 for the Kubernetes stand-ins. etcd and the stand-ins are not
# in it: the install delivers them from the lab's bundle, as it delivers a bundle to real machines. Built once per version of
# this script (kswizard keys the cache by its hash) into TREE, which every node then mounts
# read-only as the lower layer of its own overlay. Run by `kswizard lab up` as root, under a lock.
# Usage: node-image.sh TREE
set -euo pipefail
tree=$1
packages=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,iputils-ping,ca-certificates,openssl,curl,python3,haproxy,keepalived
echo "debootstrap bookworm (minbase + $packages)"
debootstrap --variant=minbase --include="$packages" bookworm "$tree" http://deb.debian.org/debian

# The lab's users, the same on every node: the key user (passwordless sudo) and the password user
# (SSH password and sudo password; the lab sets the password per lab in a layer of its own).
chroot "$tree" useradd -m -s /bin/bash kswlab
chroot "$tree" useradd -m -s /bin/bash kswpw
# Without PAM sshd refuses keys for a locked ("!") account; "*" is unlocked with no password.
chroot "$tree" usermod -p '*' kswlab
printf '%s\n' 'kswlab ALL=(ALL) NOPASSWD: ALL' 'kswpw ALL=(ALL) ALL' >"$tree/etc/sudoers.d/kswizard-lab"
chmod 440 "$tree/etc/sudoers.d/kswizard-lab"
chroot "$tree" visudo -cq

# sshd: read before Debian's own settings (the first value wins). The key file is the lab's, in the
# node's own tree, so it is readable whatever the lab dir's modes on the taskbox.
mkdir -p "$tree/etc/ssh/kswizard-lab"
cat >"$tree/etc/ssh/sshd_config.d/kswizard-lab.conf" <<'EOF'
# kswizard lab node
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/kswizard-lab/authorized_keys
# PAM's session modules (loginuid) need capabilities that containers do not have; shadow is enough.
UsePAM no
PermitRootLogin prohibit-password
KbdInteractiveAuthentication no
PasswordAuthentication no
# The engine opens many sessions per host at once.
MaxSessions 20
MaxStartups 100
Match User kswpw
    PasswordAuthentication yes
EOF
# Every node gets its own host key; none is shared through the image.
rm -f "$tree"/etc/ssh/ssh_host_*

# Installed but not started, as on a host where they are not configured yet: the plan's steps
# configure and start them. Timers that reach the network, and
# consoles nobody logs in on, are masked; so is logind (sshd runs without PAM: no sessions to track).
systemctl --quiet --root="$tree" disable haproxy.service keepalived.service >/dev/null
systemctl --quiet --root="$tree" mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
  e2scrub_all.timer fstrim.timer console-getty.service getty@.service systemd-networkd-wait-online.service \
  systemd-logind.service
mkdir -p "$tree/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=8M\n' >"$tree/etc/systemd/journald.conf.d/kswizard-lab.conf"

# Per node: the hostname and /etc/hosts (in its overlay); a machine id systemd makes at boot.
rm -f "$tree/etc/hostname"
: >"$tree/etc/machine-id"
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
echo "node image ready"
