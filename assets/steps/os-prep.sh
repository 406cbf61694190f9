#!/bin/bash
# OS preparation: the LB domain in /etc/hosts (kubeadm and the kubelets reach the apiserver by it),
# kernel modules and sysctls Kubernetes networking needs.
set -euo pipefail

line="$KSW_LB_ADDRESS $KSW_LB_DOMAIN"
if grep -qE "^[[:space:]]*${KSW_LB_ADDRESS//./\\.}[[:space:]]+${KSW_LB_DOMAIN//./\\.}([[:space:]]|$)" /etc/hosts; then
  echo "/etc/hosts already maps $KSW_LB_DOMAIN to $KSW_LB_ADDRESS"
else
  # Rewritten in place, not renamed: /etc/hosts may be a bind mount (containers, the lab).
  kept=$(grep -vE "[[:space:]]${KSW_LB_DOMAIN//./\\.}([[:space:]]|$)" /etc/hosts || true)
  printf '%s\n%s # kswizard: apiserver load balancer\n' "$kept" "$line" >/etc/hosts
  echo "/etc/hosts: $KSW_LB_DOMAIN -> $KSW_LB_ADDRESS"
fi

modules="overlay br_netfilter"
printf '%s\n' $modules >/etc/modules-load.d/kswizard-kubernetes.conf
for m in $modules; do
  # A kernel without module loading (containers) may have them built in; the kubelet reports it.
  modprobe "$m" 2>/dev/null && echo "module $m loaded" || echo "warn  module $m could not be loaded"
done

conf=/etc/sysctl.d/99-kswizard-kubernetes.conf
printf '%s\n' net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 >"$conf"
while IFS='=' read -r key value; do
  if sysctl -qw "$key=$value" 2>/dev/null; then echo "sysctl $key=$value"
  else echo "warn  sysctl $key=$value could not be applied (module missing or read-only /proc/sys)"; fi
done <"$conf"
echo "os prep done"
