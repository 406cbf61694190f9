#!/bin/bash
# `kswizard etcd restore`: this master's apiserver back, the kubeadm way (its static pod manifest
# back in /etc/kubernetes/manifests: the kubelet starts it), then ready on the restored etcd.
set -euo pipefail
manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
aside=/etc/kubernetes/kswizard-restore/kube-apiserver.yaml
if [ -f "$aside" ]; then
  mv -f "$aside" "$manifest"
  echo "kube-apiserver.yaml back in /etc/kubernetes/manifests: the kubelet starts the apiserver"
elif [ -f "$manifest" ]; then
  echo "kube-apiserver.yaml already in /etc/kubernetes/manifests"
else
  echo "FAIL  neither $manifest nor $aside: the manifest is lost; \`kubeadm init phase control-plane apiserver\` writes it again"
  exit 1
fi
for i in $(seq 120); do
  if out=$(curl -sk --max-time 2 "https://$KSW_IP:6443/readyz" 2>&1) && [ "$out" = ok ]; then
    echo "the apiserver on $KSW_IP:6443 is ready"
    exit 0
  fi
  [ $((i % 10)) = 1 ] && echo "waiting for the apiserver's /readyz: ${out:-no answer}"
  sleep 1
done
echo "FAIL  the apiserver on $KSW_IP:6443 is not ready: ${out:-no answer} (journalctl -u kubelet)"
exit 1
