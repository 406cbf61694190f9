#!/bin/bash
# Join this node: masters as control-plane nodes (the first master was initialized instead),
# workers as nodes. The plan runs it twice (masters, then workers); a joined node skips it.
set -euo pipefail
has_role() { [[ ",$KSW_ROLES," == *",$1,"* ]]; }

if [ "$KSW_IP" = "$KSW_FIRST_MASTER" ]; then
  echo "first master: initialized by kubeadm-init"
  exit 0
fi
if [ -s /etc/kubernetes/kubelet.conf ]; then
  echo "already joined"
  exit 0
fi
args=(join "$JOIN_ENDPOINT" --token "$JOIN_TOKEN" --discovery-token-ca-cert-hash "$JOIN_CA_HASH" --node-name "$KSW_NODE")
if has_role master; then
  args+=(--control-plane --certificate-key "$JOIN_CERT_KEY" --apiserver-advertise-address "$KSW_IP")
  echo "joining as a control-plane node through $JOIN_ENDPOINT"
else
  echo "joining as a worker through $JOIN_ENDPOINT"
fi
kubeadm "${args[@]}"
