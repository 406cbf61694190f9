#!/bin/bash
# OS preparation: the LB domain in /etc/hosts (kubeadm and the kubelets reach the apiserver by it),
# kernel modules and sysctls Kubernetes networking needs.
set -euo pipefail

# /etc/hosts gets one line, "address name", and only when both are what they claim to be: the
# environment is never trusted to hold just that (a domain with a newline would add any mapping).
ipv4='^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'
ipv6='^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$'
label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
name="^$label(\\.$label)*\\.?$"
if ! [[ $KSW_LB_DOMAIN =~ $name ]]; then
  echo "refusing to write /etc/hosts: the LB domain '$KSW_LB_DOMAIN' is not a DNS name (check apiserver_loadbalancer_domain_name in common.yaml)"
  exit 2
fi
# Only the line kswizard wrote (tagged) is ever replaced or removed: the operator's own lines stay.
tag='# kswizard: apiserver load balancer'
line="$KSW_LB_ADDRESS $KSW_LB_DOMAIN $tag"
# Rewritten in place, not renamed: /etc/hosts may be a bind mount (containers, the lab).
untagged=$(grep -vF "$tag" /etc/hosts || true)
# A dotted string of digits is a mistyped IPv4 address, never a name.
if [[ $KSW_LB_ADDRESS =~ $name && ! $KSW_LB_ADDRESS =~ ^[0-9.]+$ ]]; then
  echo "the LB address $KSW_LB_ADDRESS is a name: $KSW_LB_DOMAIN must resolve through DNS (no /etc/hosts line)"
  if grep -qF "$tag" /etc/hosts; then
    printf '%s\n' "$untagged" >/etc/hosts
    echo "/etc/hosts: removed kswizard's earlier line for $KSW_LB_DOMAIN"
  fi
elif ! [[ $KSW_LB_ADDRESS =~ $ipv4 || $KSW_LB_ADDRESS =~ $ipv6 ]]; then
  echo "refusing to write /etc/hosts: the LB address '$KSW_LB_ADDRESS' is neither an IP address nor a DNS name"
  exit 2
elif grep -qxF "$line" /etc/hosts; then
  echo "/etc/hosts already maps $KSW_LB_DOMAIN to $KSW_LB_ADDRESS"
else
  printf '%s\n%s\n' "$untagged" "$line" >/etc/hosts
  echo "/etc/hosts: $KSW_LB_DOMAIN -> $KSW_LB_ADDRESS"
fi

modules=(overlay br_netfilter)
printf '%s\n' "${modules[@]}" >/etc/modules-load.d/kswizard-kubernetes.conf
for m in "${modules[@]}"; do
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
