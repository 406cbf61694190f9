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
  # A dead node's kubelet never confirms its pods are gone, so a drain would only wait out its
  # timeout: cordoned, its pods go when delete-node deletes the node object (the pod garbage
  # collector removes them and their controllers start them elsewhere).
  status=$(kubectl get node "$n" | awk 'NR == 2 { print $2 }')
  case $status in
    Ready | Ready,*) ;;
    *)
      kubectl cordon "$n"
      echo "$n is $status (its kubelet does not answer): cordoned, not drained; its pods are deleted with the node object"
      continue
      ;;
  esac
  kubectl drain "$n" --ignore-daemonsets --delete-emptydir-data --force --timeout=120s
done
