#!/bin/bash
# `kswizard etcd restore`: stop this host's etcd member before its data is replaced. External etcd:
# kswizard's own unit (or process, without systemd). Stacked: kubeadm's etcd static pod, its
# manifest moved aside as the apiserver's is (the lab's stand-in runs it as a unit instead).
set -euo pipefail
aside=/etc/kubernetes/kswizard-restore
if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  if [ -f /etc/kubernetes/manifests/etcd.yaml ]; then
    mkdir -p "$aside" && chmod 700 "$aside"
    mv -f /etc/kubernetes/manifests/etcd.yaml "$aside/"
    echo "etcd.yaml moved to $aside: the kubelet stops the member"
  fi
  units=(kswizard-standin-etcd.service)
else
  units=(kswizard-etcd.service)
  pidfile=/var/lib/etcd/etcd.pid
  if [ -s "$pidfile" ] && grep -qa etcd "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; then
    kill "$(cat "$pidfile")"
  fi
fi
for unit in "${units[@]}"; do
  if [ -f "/etc/systemd/system/$unit" ]; then
    systemctl stop "$unit"
    echo "$unit stopped"
  fi
done
for _ in $(seq 60); do
  [ -n "$(ss -Hltn "sport = :2380")" ] || { echo "etcd is stopped on $KSW_IP"; exit 0; }
  sleep 1
done
echo "FAIL  etcd still listens on :2380 60 s later"
exit 1
