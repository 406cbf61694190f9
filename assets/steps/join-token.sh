#!/bin/bash
# Fresh join credentials on the first master, for the nodes that join in this install: a bootstrap
# token (kubeadm's live 24 h) and the certificate key of the control plane's uploaded certificates
# (2 h). A membership step: it runs again whenever hosts are added, so a node added weeks after the
# install joins with credentials made for it. Published as secrets, never printed.
set -euo pipefail
export KUBECONFIG=/etc/kubernetes/admin.conf
[ -s "$KUBECONFIG" ] || { echo "FAIL  $KUBECONFIG is missing: kubeadm-init has not run on this node"; exit 1; }
endpoint=$KSW_LB_DOMAIN:$KSW_LB_PORT
join=$(kubeadm token create --print-join-command)
cert_key=$(kubeadm init phase upload-certs --upload-certs | tail -n 1)
token="" ca_hash=""
read -r -a words <<<"$join"
for ((i = 0; i < ${#words[@]}; i++)); do
  case ${words[i]} in
    --token) token=${words[i + 1]} ;;
    --discovery-token-ca-cert-hash) ca_hash=${words[i + 1]} ;;
  esac
done
if [ -z "$token" ] || [ -z "$ca_hash" ]; then
  echo "FAIL  kubeadm token create --print-join-command gave no token or CA hash"
  exit 1
fi
{
  echo "JOIN_ENDPOINT=$endpoint"
  echo "JOIN_TOKEN=$token"
  echo "JOIN_CA_HASH=$ca_hash"
  echo "JOIN_CERT_KEY=$cert_key"
} >>"$KSW_OUTPUT"
echo "join parameters published (endpoint $endpoint; a new token and certificate key)"
