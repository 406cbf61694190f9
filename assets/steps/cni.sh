#!/bin/bash
# The pod network (Calico), applied once on the first master after kubeadm init: the bundle's
# calico.yaml with its IPv4 pool set to the pod CIDR (common.yaml's kube_pods_subnet, which kubeadm
# got as podSubnet), applied with the admin kubeconfig; then this node must turn Ready (kubelets
# say "network plugin not ready" until a CNI runs). Calico ignores a changed pool once installed,
# so a re-run with another CIDR fails instead of pretending to change it.
# `cni.sh --render FILE` only prints FILE with the pool set (for tests).
set -euo pipefail
manifest=/etc/kswizard/addons/calico.yaml
applied=/etc/kswizard/addons/calico.applied.yaml
export KUBECONFIG=/etc/kubernetes/admin.conf

fail() { echo "FAIL  $*"; exit 1; }

# The real manifest has the entry commented out in calico-node's env:
#             # - name: CALICO_IPV4POOL_CIDR
#             #   value: "192.168.0.0/16"
# Uncommented in place (dropping "# " keeps the list's indentation) with the value replaced;
# an entry already active gets its value replaced. Exit 3 when the manifest has no such entry.
render() {
  awk -v cidr="$KSW_POD_CIDR" '
    set_next && /^[[:space:]]*#?[[:space:]]*value:/ {
      sub(/#[[:space:]]?/, ""); sub(/value:.*/, "value: \"" cidr "\""); print; set_next = 0; next
    }
    /^[[:space:]]*#?[[:space:]]*- name: CALICO_IPV4POOL_CIDR[[:space:]]*$/ {
      sub(/#[[:space:]]?/, ""); print; set_next = 1; found = 1; next
    }
    { set_next = 0; print }
    END { if (!found) exit 3 }
  ' "$1"
}

if [ "${1:-}" = --render ]; then
  render "$2"
  exit
fi

[[ $KSW_POD_CIDR =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] ||
  fail "the pod CIDR '$KSW_POD_CIDR' is not an IPv4 network: set kube_pods_subnet in conf/common.yaml (e.g. 10.233.64.0/18)"
[ -s "$manifest" ] || fail "$manifest is missing: the bundle delivers it (bundle: in conf/kswizard.yaml); put Calico's calico.yaml there"
[ -s "$KUBECONFIG" ] || fail "$KUBECONFIG is missing: kubeadm-init has not run on this node"

# Applied once: the pool a running Calico has cannot be changed by applying again.
if current=$(kubectl get daemonset calico-node -n kube-system -o yaml 2>/dev/null); then
  pool=$(grep -A1 -- '- name: CALICO_IPV4POOL_CIDR' <<<"$current" | sed -n 's/.*value: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p')
  [ "$pool" = "$KSW_POD_CIDR" ] ||
    fail "Calico is already applied with the pool ${pool:-(none)}, not $KSW_POD_CIDR: Calico keeps the pool it started with; put kube_pods_subnet back to ${pool:-its earlier value} in conf/common.yaml"
  echo "Calico already applied (pool $pool)"
else
  new=$(mktemp "$applied.XXXXXX")
  rc=0
  render "$manifest" >"$new" || rc=$?
  [ "$rc" = 0 ] || { rm -f "$new"; fail "$manifest has no CALICO_IPV4POOL_CIDR entry (rc $rc): is it Calico's calico.yaml?"; }
  chmod 644 "$new"
  mv -f "$new" "$applied"
  echo "applying Calico with the IPv4 pool $KSW_POD_CIDR"
  kubectl apply -f "$applied"
fi

# This node turns Ready once the network runs; bounded well inside the plan's timeout so the
# reason prints.
for _ in $(seq 1 120); do
  status=$(kubectl get nodes 2>&1 | awk -v n="$KSW_NODE" '$1 == n { print $2 }')
  if [ "$status" = Ready ]; then
    echo "pod network ready: $KSW_NODE is Ready"
    exit 0
  fi
  sleep 2
done
kubectl get nodes || true
fail "$KSW_NODE is not Ready 240 s after Calico was applied (status '${status:-unknown}'): see kubectl -n kube-system get pods -l k8s-app=calico-node"
