#!/bin/bash
# Join this node: masters as control-plane nodes (the first master was initialized instead),
# workers as nodes. The plan runs it twice (masters, then workers); a joined node skips it.
# Then the kubelet's kubeconfig must name the control plane endpoint (the LB), never one master:
# a kubelet pointed at a master loses the cluster with that master (one written otherwise is put
# right).
set -euo pipefail
has_role() { [[ ",$KSW_ROLES," == *",$1,"* ]]; }
kubelet_conf=/etc/kubernetes/kubelet.conf

if [ "$KSW_IP" = "$KSW_FIRST_MASTER" ]; then
  echo "first master: initialized by kubeadm-init"
elif [ -s "$kubelet_conf" ]; then
  echo "already joined"
else
  args=(join "$JOIN_ENDPOINT" --token "$JOIN_TOKEN" --discovery-token-ca-cert-hash "$JOIN_CA_HASH" --node-name "$KSW_NODE")
  if has_role master; then
    args+=(--control-plane --certificate-key "$JOIN_CERT_KEY" --apiserver-advertise-address "$KSW_IP")
    echo "joining as a control-plane node through $JOIN_ENDPOINT"
  else
    echo "joining as a worker through $JOIN_ENDPOINT"
  fi
  kubeadm "${args[@]}"
fi

want=https://$JOIN_ENDPOINT
server=$(awk '$1 == "server:" { print $2; exit }' "$kubelet_conf")
if [ "$server" = "$want" ]; then
  echo "kubelet.conf: server $want (the control plane endpoint)"
else
  sed -i "s|^\( *server: *\).*|\1$want|" "$kubelet_conf"
  systemctl restart kubelet
  echo "kubelet.conf named ${server:-no server}: now $want (the control plane endpoint); kubelet restarted"
fi
