#!/bin/bash
# `kswizard etcd restore`: this member's data replaced by the snapshot kswizard delivered, then the
# member started. Every member is restored with the same names, peer URLs and cluster token as the
# install gave them, so together they form one new cluster holding the snapshot's data. The old
# data stays aside in /var/lib/kswizard-restore/<restore id>/member.old. Resumable: a member whose
# data this restore already swapped for this snapshot (its sha256 recorded) is only started.
set -euo pipefail
umask 077
work=/var/lib/kswizard-restore
snap=$work/snapshot.db
run=$work/$KSW_INSTALL_ID
read -r -a ips <<<"${KSW_ETCD//,/ }"
if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  # kubeadm's local etcd: data in /var/lib/etcd, members named after their nodes, etcd's default
  # cluster token (kubeadm sets none).
  data=/var/lib/etcd token=etcd-cluster
  IFS=, read -r -a names <<<"$KSW_ETCD_NAMES"
else
  # etcd-start.sh's: members named after their IPs, kswizard's token.
  data=/var/lib/etcd/data token=kswizard-etcd
  names=()
  for ip in "${ips[@]}"; do names+=("etcd-${ip//./-}"); done
fi
cluster="" me=""
for i in "${!ips[@]}"; do
  cluster="${cluster:+$cluster,}${names[i]}=https://${ips[i]}:2380"
  [ "${ips[i]}" = "$KSW_IP" ] && me=${names[i]}
done
[ -n "$me" ] || { echo "FAIL  $KSW_IP is not in KSW_ETCD ($KSW_ETCD)"; exit 1; }

sum=$(sha256sum "$snap") sum=${sum%% *}
mkdir -p "$run"
if [ "$(cat "$run/restored" 2>/dev/null)" = "$sum" ]; then
  echo "this member's data is the snapshot's already (swapped in by this restore earlier)"
else
  if [ -n "$(ss -Hltn "sport = :2380")" ]; then
    echo "FAIL  etcd still runs on this host: the etcd-stop step stops it first"
    exit 1
  fi
  rm -rf "$run/new"
  # etcdutl where etcd has it (3.5+), the older etcdctl's own subcommand otherwise.
  tool=(etcdutl)
  command -v etcdutl >/dev/null || tool=(env ETCDCTL_API=3 etcdctl)
  "${tool[@]}" snapshot restore "$snap" --name "$me" --data-dir "$run/new" \
    --initial-cluster "$cluster" --initial-cluster-token "$token" \
    --initial-advertise-peer-urls "https://$KSW_IP:2380" 2>&1 | tail -n 3
  if [ -d "$run/member.old" ]; then
    # An earlier attempt of this restore put the old data aside: what is in its place now is
    # that attempt's copy of the snapshot, or nothing.
    rm -rf "$data/member"
  elif [ -d "$data/member" ]; then
    mv "$data/member" "$run/member.old"
    echo "the old data is kept in $run/member.old"
  fi
  mkdir -p "$data" && chmod 700 "$data"
  mv "$run/new/member" "$data/member"
  rmdir "$run/new"
  echo "$sum" >"$run/restored"
  sync
  echo "member $me restored from the snapshot (cluster $cluster)"
fi

if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  if [ -f /etc/kubernetes/kswizard-restore/etcd.yaml ]; then
    mv -f /etc/kubernetes/kswizard-restore/etcd.yaml /etc/kubernetes/manifests/
    echo "etcd.yaml back in /etc/kubernetes/manifests: the kubelet starts the member"
  fi
  unit=kswizard-standin-etcd.service
else
  unit=kswizard-etcd.service
fi
if [ -f "/etc/systemd/system/$unit" ]; then
  systemctl start "$unit"
  echo "$unit started"
elif [ "${KSW_ETCD_TOPOLOGY:-external}" != stacked ]; then
  echo "FAIL  no $unit on this host: the restore starts etcd members with systemd"
  exit 1
fi
