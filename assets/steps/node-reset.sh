#!/bin/bash
# Undo kswizard's install on this node (`kswizard reset`, and the leaving nodes of `kswizard
# remove`): the built-in LB first (keepalived lets go of the VIP), `kubeadm reset -f`, kswizard's
# etcd member, the kubelet and containerd units kswizard wrote, the files the bundle delivered
# (as the deliver step listed them on the node), the Kubernetes packages kswizard installed from
# pkgs.k8s.io, os-prep's files and its tagged /etc/hosts line, /etc/kswizard and the step state
# under the runner's root (all but this run's own directory, which the runner still writes to).
# Only what kswizard wrote is removed: files it did not write (no marker) stay, and a file it
# replaced comes back from its .kswizard-orig. Every part is skipped when already gone: a re-run,
# or a node reset twice, ends the same.
set -uo pipefail
failed=0
say() { echo "$*"; }
warn() { echo "warn  $*"; failed=1; }
has_systemd() { [ -d /run/systemd/system ]; }

# Stop and disable a unit if this node has it; `$2` = 1 also removes its unit file (kswizard's).
stop_unit() {
  local unit=$1 remove=${2:-0} file=/etc/systemd/system/$1
  has_systemd || return 0
  # Not `list-unit-files | grep -q`: grep leaving early fails the pipeline under pipefail.
  if systemctl cat "$unit" >/dev/null 2>&1; then
    systemctl disable --now --quiet "$unit" 2>/dev/null || systemctl stop "$unit" 2>/dev/null || true
    say "$unit: stopped and disabled"
  fi
  if [ "$remove" = 1 ] && { [ -e "$file" ] || [ -d "$file.d" ]; }; then
    rm -rf "$file" "$file.d"
    say "removed $file"
  fi
}

# Stop a daemon started without systemd (containers), by the pid file kswizard's step wrote.
stop_pidfile() {
  local pidfile=$1 name=$2 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if grep -qa "$name" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null && say "$name (pid $pid): stopped"
  fi
  rm -f "$pidfile"
}

# A config kswizard wrote (it carries `marker`): removed, or the operator's earlier one put back.
drop_config() {
  local file=$1 marker=$2
  [ -e "$file" ] || return 0
  if ! grep -qF "$marker" "$file"; then
    say "$file: not written by kswizard, kept"
    return 0
  fi
  if [ -e "$file.kswizard-orig" ]; then
    mv -f "$file.kswizard-orig" "$file" && say "$file: the earlier one put back"
  else
    rm -f "$file" && say "removed $file"
  fi
}

# 1. The built-in LB (lb-built-in.sh): keepalived first, so the VIP moves to a master that stays.
lb_marker="# kswizard: built-in apiserver load balancer"
if grep -qsF "$lb_marker" /etc/keepalived/keepalived.conf /etc/haproxy/haproxy.cfg; then
  for svc in keepalived haproxy; do
    stop_unit "$svc.service"
    stop_pidfile "/run/kswizard-$svc.pid" "$svc"
  done
  drop_config /etc/keepalived/keepalived.conf "$lb_marker"
  drop_config /etc/keepalived/kswizard-check-haproxy.sh "$lb_marker"
  drop_config /etc/haproxy/haproxy.cfg "$lb_marker"
fi

# 2. kubeadm's own undo: the control plane or kubelet config, certificates, manifests, and a
# stacked etcd member's data. It needs the runtime up, so containerd stops after it.
if command -v kubeadm >/dev/null && [ -d /etc/kubernetes ]; then
  kubeadm reset -f || warn "kubeadm reset -f failed (output above)"
fi
rm -rf /etc/kubernetes /var/lib/kubelet /etc/cni/net.d/10-calico.conflist /etc/cni/net.d/calico-kubeconfig

# 3. kswizard's external etcd member (etcd-start.sh): its unit or detached process, data, certs.
stop_unit kswizard-etcd.service 1
stop_pidfile /var/lib/etcd/etcd.pid etcd
if [ -d /var/lib/etcd ] || [ -d /etc/etcd/pki ]; then
  rm -rf /var/lib/etcd /etc/etcd/pki
  say "removed /var/lib/etcd and /etc/etcd/pki"
fi

# 4. The kubelet and containerd (kube-packages.sh, container-runtime.sh): units stopped; the unit
# files kswizard wrote for the bundle's binaries removed (packages keep their own until purged).
ours=0
grep -qs '/usr/local/bin/kubelet' /etc/systemd/system/kubelet.service && ours=1
stop_unit kubelet.service "$ours"
ours=0
grep -qs 'Written by kswizard' /etc/systemd/system/containerd.service && ours=1
stop_unit containerd.service "$ours"
if [ -e /etc/containerd/config.toml.kswizard-old ]; then
  mv -f /etc/containerd/config.toml.kswizard-old /etc/containerd/config.toml && say "/etc/containerd/config.toml: the earlier one put back"
else
  rm -f /etc/containerd/config.toml
fi
rm -f /etc/crictl.yaml
has_systemd && systemctl daemon-reload

# 5. The bundle's files, as the deliver step listed them here (absolute paths only).
root=$(dirname "${KSW_STATE:?kswizard sets KSW_STATE}")
if [ -s "$root/bundle-files" ]; then
  n=0
  while IFS= read -r f; do
    case $f in /*) ;; *) continue ;; esac
    case $f in *..*) continue ;; esac
    if [ -e "$f" ] || [ -L "$f" ]; then rm -f -- "$f" && n=$((n + 1)); fi
  done <"$root/bundle-files"
  say "removed $n files the bundle delivered"
fi

# 6. Packages kswizard installed from pkgs.k8s.io (KSW_DELIVERY=packages), with its repository.
if [ -s /etc/apt/sources.list.d/kubernetes.list ] && command -v apt-get >/dev/null; then
  apt-mark unhold kubelet kubeadm kubectl >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kubelet kubeadm kubectl cri-tools || warn "apt-get purge of the Kubernetes packages failed"
  rm -f /etc/apt/sources.list.d/kubernetes.list /etc/apt/keyrings/kubernetes-apt-keyring.gpg
  say "purged kubelet, kubeadm, kubectl, cri-tools and the pkgs.k8s.io repository"
elif [ -s /etc/yum.repos.d/kubernetes.repo ]; then
  pm=$(command -v dnf || command -v yum || echo yum)
  "$pm" remove -y kubelet kubeadm kubectl cri-tools || warn "removing the Kubernetes packages failed"
  rm -f /etc/yum.repos.d/kubernetes.repo
  say "removed kubelet, kubeadm, kubectl, cri-tools and the pkgs.k8s.io repository"
fi

# 7. os-prep: its /etc/hosts line (rewritten in place: /etc/hosts may be a bind mount), modules
# and sysctl files (the values stay set until a reboot).
tag='# kswizard: apiserver load balancer'
if grep -qF "$tag" /etc/hosts; then
  kept=$(grep -vF "$tag" /etc/hosts || true)
  printf '%s\n' "$kept" >/etc/hosts
  say "/etc/hosts: removed kswizard's line"
fi
rm -f /etc/modules-load.d/kswizard-kubernetes.conf /etc/sysctl.d/99-kswizard-kubernetes.conf

# 8. kswizard's own files on the node; this run's step directory stays (the runner writes its end).
rm -rf /etc/kswizard
if [ -d "$root" ]; then
  find "$root" -mindepth 1 -maxdepth 1 ! -path "$KSW_STATE" -exec rm -rf {} +
fi
[ "$failed" = 0 ] || { echo "FAIL  parts of the reset failed (above)"; exit 1; }
echo "reset: nothing of kswizard's install is left on $KSW_NODE"
