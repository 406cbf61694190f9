#!/bin/bash
# Verification on every master: its apiserver ready, the etcd cluster healthy with every member,
# the apiserver reachable through the LB, and (on the first master) every node registered and Ready.
set -uo pipefail
ca=/etc/kubernetes/pki/ca.crt
# The apiserver's own etcd client certificate: kswizard's (external) or kubeadm's (stacked).
if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  etcd_ca=/etc/kubernetes/pki/etcd/ca.crt client=/etc/kubernetes/pki/apiserver-etcd-client
else
  etcd_ca=/etc/etcd/pki/ca.crt client=/etc/etcd/pki/apiserver-etcd-client
fi
endpoints=$(for ip in ${KSW_ETCD//,/ }; do printf 'https://%s:2379,' "$ip"; done)
etcdctl() { ETCDCTL_API=3 command etcdctl --endpoints "${endpoints%,}" --cacert "$etcd_ca" \
  --cert "$client.crt" --key "$client.key" --dial-timeout 3s "$@"; }
all_nodes=$(tr , '\n' <<<"$KSW_MASTERS,$KSW_WORKERS" | grep . | sort -u | wc -l)
etcd_count=$(tr , '\n' <<<"$KSW_ETCD" | grep -c .)

check() {
  local failed=0
  readyz=$(curl -sS --max-time 5 --cacert "$ca" "https://$KSW_IP:6443/readyz" 2>&1)
  if [ "$readyz" = ok ]; then echo "ok    apiserver $KSW_IP:6443 /readyz"; else echo "FAIL  apiserver $KSW_IP:6443 /readyz: $readyz"; failed=1; fi
  if health=$(etcdctl endpoint health 2>&1); then echo "ok    etcd: all endpoints healthy"; else echo "FAIL  etcd: $health"; failed=1; fi
  members=$(etcdctl member list 2>/dev/null | grep -c started)
  if [ "$members" = "$etcd_count" ]; then echo "ok    etcd: $members of $etcd_count members started"; else echo "FAIL  etcd: $members of $etcd_count members started"; failed=1; fi
  # By the domain, as kubelets and kubectl reach it; /etc/hosts maps it to the LB address.
  lb=$(curl -sS --max-time 5 --cacert "$ca" "https://$KSW_LB_DOMAIN:$KSW_LB_PORT/readyz" 2>&1)
  if [ "$lb" = ok ]; then echo "ok    apiserver through the LB $KSW_LB_DOMAIN:$KSW_LB_PORT"; else echo "FAIL  through the LB $KSW_LB_DOMAIN:$KSW_LB_PORT: $lb"; failed=1; fi
  if [ "$KSW_IP" = "$KSW_FIRST_MASTER" ]; then
    nodes=$(kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes 2>&1)
    ready=$(awk 'NR > 1 && $2 == "Ready"' <<<"$nodes" | wc -l)
    if [ "$ready" = "$all_nodes" ]; then echo "ok    $ready of $all_nodes nodes Ready"; else echo "FAIL  $ready of $all_nodes nodes Ready"; failed=1; fi
    echo "$nodes"
  fi
  return "$failed"
}

for attempt in $(seq 1 15); do
  check && { echo "verified"; exit 0; }
  echo "attempt $attempt failed; retrying in 2 s"
  sleep 2
done
exit 1
