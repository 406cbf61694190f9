#!/bin/bash
# kubeadm init on the first master: the control plane behind the LB domain, with the external etcd
# or (KSW_ETCD_TOPOLOGY=stacked) kubeadm's local etcd, a member on each master.
# The join credentials come from the join-token step.
# `kubeadm-init.sh --render` only prints the kubeadm config (for tests).
set -euo pipefail
config=/etc/kubernetes/kubeadm-config.yaml
# Every node reaches the control plane through the LB by its domain (os-prep maps it to the LB
# address): kubeadm's endpoint, the join commands and the kubeconfigs all use it.
endpoint=$KSW_LB_DOMAIN:$KSW_LB_PORT
render_config() {
  cat <<YAML
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $KSW_IP
  bindPort: 6443
nodeRegistration:
  name: $KSW_NODE
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
controlPlaneEndpoint: $endpoint
networking:
  # The pod network Calico's pool is set to (the cni step): common.yaml's kube_pods_subnet.
  podSubnet: $KSW_POD_CIDR
apiServer:
  certSANs:
  - $KSW_LB_ADDRESS
  - $KSW_LB_DOMAIN
YAML
  if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
    # kubeadm's default: its own member on this master; join --control-plane adds the others.
    printf 'etcd:\n  local:\n    dataDir: /var/lib/etcd\n'
    return
  fi
  cat <<YAML
etcd:
  external:
    caFile: /etc/etcd/pki/ca.crt
    certFile: /etc/etcd/pki/apiserver-etcd-client.crt
    keyFile: /etc/etcd/pki/apiserver-etcd-client.key
    endpoints:
YAML
  for ip in ${KSW_ETCD//,/ }; do echo "    - https://$ip:2379"; done
}
if [ "${1:-}" = --render ]; then
  render_config
  exit 0
fi
mkdir -p /etc/kubernetes
render_config >"$config"

if [ -s /etc/kubernetes/admin.conf ]; then
  echo "control plane already initialized"
else
  # The token and certificate key stay out of the log (join-token makes those the joins use).
  kubeadm init --config "$config" --upload-certs --skip-token-print --skip-certificate-key-print
fi
