#!/bin/bash
# `kswizard remove`, on the first staying master, after the leaving nodes were reset (a kubelet
# still running would register its node again): delete their node objects.
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
for n in ${KSW_LEAVING_NAMES//,/ }; do
  kubectl delete node "$n" --ignore-not-found
done
echo "nodes now:"
kubectl get nodes
