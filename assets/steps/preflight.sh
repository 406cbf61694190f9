#!/bin/bash
# Preflight: check that this node can take its roles before anything is changed. Reads only.
set -uo pipefail
failed=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; failed=1; }
has_role() { [[ ",$KSW_ROLES," == *",$1,"* ]]; }

[ "$(id -u)" = 0 ] && ok "root through sudo" || bad "not root: sudo did not give root"

tools="bash openssl curl ss ip timeout setsid base64 sha256sum"
# With a bundle, etcd arrives with the deliver step, after this check.
[ "${KSW_DELIVERY:-packages}" != bundle ] && has_role etcd && tools="$tools etcd etcdctl"
for t in $tools; do
  command -v "$t" >/dev/null && ok "tool $t" || bad "tool $t missing"
done

# Minimums of kubeadm (control plane: 2 CPUs, 2 GiB) and of KubeSphere's docs (20 GiB disk).
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
disk_gb=$(df -Pk /var/lib | awk 'NR == 2 {print int($4 / 1048576)}')
min_cpu=1 min_mem=1024
has_role master && min_cpu=2 min_mem=1700
[ "$cpus" -ge "$min_cpu" ] && ok "cpus $cpus (minimum $min_cpu)" || bad "cpus $cpus, need $min_cpu"
[ "$mem_mb" -ge "$min_mem" ] && ok "memory ${mem_mb} MiB (minimum $min_mem)" || bad "memory ${mem_mb} MiB, need $min_mem"
[ "$disk_gb" -ge 20 ] && ok "disk ${disk_gb} GiB free in /var/lib (minimum 20)" || bad "disk ${disk_gb} GiB free in /var/lib, need 20"

if [ "$(awk 'NR > 1' /proc/swaps | wc -l)" -eq 0 ]; then ok "swap off"; else bad "swap is on: the kubelet refuses to start (swapoff -a, and remove it from /etc/fstab)"; fi

if ip route get "$KSW_IP" 2>/dev/null | grep -q '^local '; then ok "ip $KSW_IP is an address of this host"
else bad "ip $KSW_IP is not an address of this host: fix ip= in hosts.ini"; fi

[ "$(hostname)" = "$KSW_NODE" ] && ok "hostname $KSW_NODE" || echo "warn  hostname is $(hostname), hosts.ini calls it $KSW_NODE"

now=$(date -u +%s)
[ "$now" -gt 1700000000 ] && ok "clock $(date -u +%FT%TZ) (epoch $now)" || bad "clock $(date -u) is not set"

# Ports the node's components will listen on; a re-run after they started finds them taken by
# kswizard's own components, which is fine.
ports=""
has_role master && ports="$ports 6443 10257 10259"
has_role etcd && ports="$ports 2379 2380"
# The built-in LB's haproxy takes the LB port on every address; once it is kswizard's, it is fine.
if has_role master && [ "$KSW_LB_MODE" = built-in ] && ! grep -qs '^# kswizard: built-in apiserver load balancer' /etc/haproxy/haproxy.cfg; then
  ports="$ports $KSW_LB_PORT"
fi
if [ -e /etc/kubernetes/kubelet.conf ] || [ -e /var/lib/etcd/data/member ]; then
  ok "ports: components already installed, not checked"
else
  listening=$(ss -Hltn | awk '{print $4}')
  for p in $ports 10250; do
    if grep -qxE "($KSW_IP|0\.0\.0\.0|\*|\[::\]):$p" <<<"$listening"; then bad "port $KSW_IP:$p is in use"
    else ok "port $KSW_IP:$p free"; fi
  done
fi

[ "$failed" = 0 ] && echo "preflight passed" || echo "preflight failed"
exit "$failed"
