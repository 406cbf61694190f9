#!/bin/bash
# `kswizard remove`, on the first staying master: cordon and drain each leaving node (its pods go
# elsewhere before kubeadm reset stops it), as the kubeadm docs' node removal starts. A node with
# no node object (never joined, or deleted by an earlier run) has nothing to drain.
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
for n in ${KSW_LEAVING_NAMES//,/ }; do
  if ! kubectl get node "$n" >/dev/null 2>&1; then
    echo "$n: no node object, nothing to drain"
    continue
  fi
  kubectl drain "$n" --ignore-daemonsets --delete-emptydir-data --force --timeout=120s
done
