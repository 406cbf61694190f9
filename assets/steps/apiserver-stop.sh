#!/bin/bash
# `kswizard etcd restore`: stop this master's apiserver the kubeadm way, before etcd is replaced:
# its static pod manifest moves out of /etc/kubernetes/manifests (the kubelet then stops the pod)
# into /etc/kubernetes/kswizard-restore/, from where apiserver-start.sh puts it back.
set -euo pipefail
manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
aside=/etc/kubernetes/kswizard-restore
mkdir -p "$aside" && chmod 700 "$aside"
if [ -f "$manifest" ]; then
  mv -f "$manifest" "$aside/"
  echo "kube-apiserver.yaml moved to $aside: the kubelet stops the apiserver"
elif [ -f "$aside/kube-apiserver.yaml" ]; then
  echo "kube-apiserver.yaml already moved aside"
else
  echo "FAIL  neither $manifest nor $aside/kube-apiserver.yaml: is this master installed?"
  exit 1
fi
# The kubelet looks at its manifests every 20 s or so; the apiserver is gone when nothing listens
# on its port any more.
listening() { [ -n "$(ss -Hltn "sport = :6443")" ]; }
for _ in $(seq 90); do
  listening || { echo "the apiserver is stopped"; exit 0; }
  sleep 1
done
echo "FAIL  the apiserver still listens on :6443 90 s after its manifest moved: is the kubelet running? (journalctl -u kubelet)"
exit 1
