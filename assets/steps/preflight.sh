#!/bin/bash
# Preflight: what this node is, read before anything is changed. Reads only, changes nothing, and
# always exits 0: kswizard (engine/preflight.rs) judges the report and compares the nodes.
# Output, one item a line:
#   FACT <key>=<value>                          what the node says it is (time, hostname, ...)
#   CHECK <id> ok|warn|fail <reason> ;; <fix>   one check (the fix may be empty)
#   END                                         the report is complete
set -uo pipefail
# First, so the time is read as close as possible to when kswizard sent the command. `date` from
# the PATH (not bash's printf %T): a test puts a clock 60 s ahead in front of it.
echo "FACT time=$(date -u +%s.%N)"
echo "FACT hostname=$(hostname)"
echo "FACT machine_id=$(tr -d '[:space:]' </etc/machine-id 2>/dev/null)"
addrs=$(ip -o addr show scope global 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4}' | paste -sd, -)
echo "FACT addresses=$addrs"

check() { printf 'CHECK %s %s %s ;; %s\n' "$1" "$2" "$3" "${4:-}"; }
has_role() { [[ ",$KSW_ROLES," == *",$1,"* ]]; }
# kswizard installed on this node before (a step of some install left its state dir): what it
# started then (ports, /etc/kubernetes) is its own, and fine on a resume or a re-run.
ours=0
compgen -G "${KSW_STATE_ROOT:-/var/lib/kswizard}/*/*/rc" >/dev/null && ours=1

if [ "$(id -u)" = 0 ]; then check root ok "root through sudo"
else check root fail "commands do not run as root" "give the user passwordless sudo, or set ansible_become_pass"; fi

tools="bash openssl curl ss ip timeout setsid base64 sha256sum getent"
# With a bundle, etcd arrives in the deliver step, after preflight.
has_role etcd && [ "${KSW_DELIVERY:-packages}" != bundle ] && tools="$tools etcd etcdctl"
missing=""
for t in $tools; do command -v "$t" >/dev/null || missing="$missing $t"; done
if [ -z "$missing" ]; then check tools ok "$tools"
else check tools fail "missing:$missing" "install them (Debian/Ubuntu: apt-get install iproute2 curl openssl coreutils util-linux)"; fi

# Minimums of kubeadm (control plane: 2 CPUs, 2 GiB).
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
min_cpu=1 min_mem=1024
has_role master && min_cpu=2 min_mem=1700
if [ "$cpus" -ge "$min_cpu" ]; then check cpus ok "$cpus (minimum $min_cpu)"
else check cpus fail "$cpus CPUs, need $min_cpu" "give the machine more CPUs"; fi
if [ "$mem_mb" -ge "$min_mem" ]; then check memory ok "${mem_mb} MiB (minimum $min_mem)"
else check memory fail "${mem_mb} MiB, need $min_mem" "give the machine more memory"; fi

# Free space where the data will live: the nearest directory that exists holds it.
free_gib() {
  local d=$1
  while [ ! -d "$d" ]; do d=$(dirname "$d"); done
  df -Pk "$d" | awk 'NR == 2 {print int($4 / 1048576)}'
}
# KubeSphere's docs ask for 20 GiB for images; etcd's default quota is 2 GiB.
gib=$(free_gib /var/lib/containerd)
# Below 20 GiB the images KubeSphere pulls may not fit (a warning); below 5 GiB not even the
# control plane's (a failure).
if [ "$gib" -ge 20 ]; then check disk-containerd ok "$gib GiB free for /var/lib/containerd (minimum 20)"
elif [ "$gib" -ge 5 ]; then check disk-containerd warn "$gib GiB free for /var/lib/containerd, KubeSphere's images want 20" "free space or mount a larger disk on /var/lib/containerd"
else check disk-containerd fail "$gib GiB free for /var/lib/containerd, need at least 5 (20 for KubeSphere's images)" "free space or mount a larger disk on /var/lib/containerd"; fi
if has_role etcd; then
  gib=$(free_gib /var/lib/etcd)
  if [ "$gib" -ge 2 ]; then check disk-etcd ok "$gib GiB free for /var/lib/etcd (minimum 2)"
  else check disk-etcd fail "$gib GiB free for /var/lib/etcd, need 2" "free space or mount a disk on /var/lib/etcd"; fi
fi

if [ "$(awk 'NR > 1' /proc/swaps | wc -l)" -eq 0 ]; then check swap ok "off"
else check swap fail "swap is on: the kubelet refuses to start" "swapoff -a, and remove swap from /etc/fstab"; fi

if ip route get "$KSW_IP" 2>/dev/null | grep -q '^local '; then check ip ok "$KSW_IP is an address of this host"
else check ip fail "$KSW_IP is not an address of this host (it has: ${addrs:-none})" "fix ip= of this host in hosts.ini"; fi

if [ "$(hostname)" = "$KSW_NODE" ]; then check hostname ok "$KSW_NODE"
else check hostname warn "the hostname is $(hostname), hosts.ini calls it $KSW_NODE" "hostnamectl set-hostname $KSW_NODE (or rename the host in hosts.ini)"; fi

case $(stat -fc %T /sys/fs/cgroup 2>/dev/null) in
  cgroup2fs) check cgroup ok "v2" ;;
  *) check cgroup warn "v1: Kubernetes 1.31 and later run on cgroup v1 only in maintenance mode" "boot with systemd.unified_cgroup_hierarchy=1" ;;
esac

# os-prep loads them; here only whether it can. Present is what they provide (built-in modules
# without parameters have no /sys/module entry; containers see the host kernel's).
present() {
  case $1 in
    overlay) grep -qw overlay /proc/filesystems ;;
    br_netfilter) [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || [ -d /sys/module/br_netfilter ] ;;
  esac
}
for m in overlay br_netfilter; do
  if present "$m"; then check "module-$m" ok "present"
  elif modprobe -n "$m" 2>/dev/null; then check "module-$m" ok "loadable (os-prep loads it)"
  else check "module-$m" warn "not loaded and cannot be loaded here" "install the kernel's modules (Debian/Ubuntu: linux-modules-extra-$(uname -r)) or load $m on the host"; fi
done

# Ports the node's components will listen on (any address: the controller manager and the
# scheduler listen on 127.0.0.1).
ports="10250 30880"
has_role master && ports="$ports 6443 10257 10259"
has_role etcd && ports="$ports 2379 2380"
# The built-in LB's haproxy takes the LB port on every master; once it is kswizard's, it is fine.
if has_role master && [ "$KSW_LB_MODE" = built-in ] && ! grep -qs '^# kswizard: built-in apiserver load balancer' /etc/haproxy/haproxy.cfg; then
  ports="$ports $KSW_LB_PORT"
fi
listening=$(ss -Hltnp 2>/dev/null)
taken="" own=""
for p in $ports; do
  line=$(awk -v p=":$p" '$4 ~ p "$"' <<<"$listening" | head -n 1)
  [ -n "$line" ] || continue
  proc=$(grep -o 'users:(("[^"]*"' <<<"$line" | cut -d'"' -f2)
  pid=$(grep -o 'pid=[0-9]*' <<<"$line" | head -n 1 | cut -d= -f2)
  args=$(tr '\0' ' ' 2>/dev/null <"/proc/${pid:-0}/cmdline")
  # kswizard's components (the lab's stand-ins for them run as standin.py) on a node kswizard
  # installed on before.
  if [ "$ours" = 1 ] && [[ " etcd kube-apiserver kube-controller kube-scheduler kubelet haproxy " == *" ${proc:-?} "* || $args == *standin.py* ]]; then
    own="$own $p"
  else
    taken="$taken $p (${proc:-unknown})"
  fi
done
if [ -n "$taken" ]; then check ports fail "in use:$taken" "stop what listens there, or leave this host out"
elif [ -n "$own" ]; then check ports ok "${ports# } free or held by kswizard's earlier install (${own# })"
else check ports ok "${ports# } free"; fi

# An old Docker: its containerd and iptables rules get in the way of the containerd kswizard sets up.
docker_fix="systemctl disable --now docker.service docker.socket; apt-get purge docker-ce docker-ce-cli docker.io (or dnf remove); rm -rf /var/lib/docker"
if pgrep -x dockerd >/dev/null; then check docker fail "dockerd is running" "$docker_fix"
elif command -v docker >/dev/null; then check docker fail "Docker is installed ($(command -v docker))" "$docker_fix"
elif [ -d /var/lib/docker ]; then check docker warn "/var/lib/docker is left from an old Docker" "rm -rf /var/lib/docker once nothing in it is needed"
else check docker ok "none"; fi

# A Kubernetes install kswizard did not make.
found=""
[ -e /etc/kubernetes/admin.conf ] && found="$found /etc/kubernetes/admin.conf"
[ -e /etc/kubernetes/kubelet.conf ] && found="$found /etc/kubernetes/kubelet.conf"
pgrep -x kubelet >/dev/null && found="$found kubelet running"
[ -n "$(ls -A /var/lib/kubelet 2>/dev/null)" ] && found="$found /var/lib/kubelet"
has_role etcd && [ -d /var/lib/etcd/data/member ] && found="$found /var/lib/etcd/data"
if [ -z "$found" ]; then check kubernetes ok "none"
elif [ "$ours" = 1 ]; then check kubernetes ok "kswizard's earlier install:$found"
else check kubernetes fail "an install kswizard did not make:$found" "kubeadm reset -f; rm -rf /etc/kubernetes /var/lib/kubelet /var/lib/etcd (or leave this host out)"; fi

# The LB domain: os-prep maps it in /etc/hosts when the LB address is an IP; a name that resolves
# elsewhere (DNS, the operator's own /etc/hosts line) would send the kubelets to another apiserver.
tag='# kswizard: apiserver load balancer'
if [ -n "${KSW_LB_DOMAIN:-}" ]; then
  resolved=$(getent hosts "$KSW_LB_DOMAIN" | awk '{print $1}' | paste -sd' ' -)
  # As os-prep tells a name from an address.
  label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
  name="^$label(\\.$label)*\\.?$"
  if [[ $KSW_LB_ADDRESS =~ $name && ! $KSW_LB_ADDRESS =~ ^[0-9.]+$ ]]; then
    # The LB address is a name itself: os-prep writes nothing, DNS must answer.
    if [ -n "$resolved" ]; then check lb-domain ok "$KSW_LB_DOMAIN resolves to $resolved"
    else check lb-domain fail "$KSW_LB_DOMAIN does not resolve, and the LB address $KSW_LB_ADDRESS is a name (os-prep writes no /etc/hosts line)" "add $KSW_LB_DOMAIN to DNS"; fi
  elif [ -z "$resolved" ]; then check lb-domain ok "$KSW_LB_DOMAIN does not resolve yet: os-prep writes '$KSW_LB_ADDRESS $KSW_LB_DOMAIN' to /etc/hosts"
  elif [[ " $resolved " == *" $KSW_LB_ADDRESS "* ]]; then check lb-domain ok "$KSW_LB_DOMAIN resolves to $KSW_LB_ADDRESS"
  elif grep -qF "$tag" /etc/hosts; then check lb-domain ok "$KSW_LB_DOMAIN resolves to $resolved through kswizard's own /etc/hosts line: os-prep rewrites it to $KSW_LB_ADDRESS"
  else check lb-domain fail "$KSW_LB_DOMAIN resolves to $resolved, not the LB address $KSW_LB_ADDRESS" "remove that mapping (/etc/hosts or DNS), or set apiserver_loadbalancer_domain_name / the LB address in common.yaml to agree"; fi
fi
# The time again, last: the script's own run time then drops out of the skew (engine/preflight.rs).
echo "FACT time_end=$(date -u +%s.%N)"
echo END
