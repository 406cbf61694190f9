#!/bin/bash
# Kubernetes packages: kubeadm, kubelet and kubectl present, and which build they are.
set -euo pipefail
for t in kubeadm kubelet kubectl; do
  command -v "$t" >/dev/null || { echo "FAIL  $t missing: install it from the Kubernetes package repository"; exit 1; }
done
echo "kubeadm: $(kubeadm version)"
echo "kubelet: $(kubelet --version)"
echo "kubectl: $(kubectl version --client)"
