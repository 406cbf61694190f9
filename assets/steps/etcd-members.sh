#!/bin/bash
# Whether the external etcd cluster exists yet, asked on the first master before any member starts:
# ETCD_CLUSTER=new on a first install (no [etcd] host answers on 2379), else the client URLs of the
# cluster's started members, which etcd-start on a host added to [etcd] joins (as a learner, then
# promoted). A membership step: it asks again whenever the hosts change.
set -euo pipefail
pki=/etc/etcd/pki
fail() { echo "FAIL  $*"; exit 1; }

listening=()
for ip in ${KSW_ETCD//,/ }; do
  # A refused connection answers at once; a silent host costs the 1 s.
  if timeout 1 bash -c "exec 3<>/dev/tcp/$ip/2379" 2>/dev/null; then listening+=("$ip"); fi
done
if [ "${#listening[@]}" = 0 ]; then
  echo "no etcd host answers on 2379: a new cluster of $(tr , '\n' <<<"$KSW_ETCD" | grep -c .) members"
  echo "ETCD_CLUSTER=new" >>"$KSW_OUTPUT"
  exit 0
fi
endpoints=$(printf 'https://%s:2379,' "${listening[@]}")
list=""
# An existing cluster answers within seconds; one still electing a leader gets a little longer.
for _ in $(seq 1 30); do
  list=$(ETCDCTL_API=3 etcdctl --endpoints "${endpoints%,}" --cacert "$pki/ca.crt" \
    --cert "$pki/apiserver-etcd-client.crt" --key "$pki/apiserver-etcd-client.key" \
    --dial-timeout 2s --command-timeout 5s member list 2>&1) && break
  list=""
  sleep 1
done
[ -n "$list" ] || fail "etcd answers on ${listening[*]} but does not list its members (no quorum?): make the cluster healthy (etcdctl endpoint health) before the install adds members"
# ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER
echo "$list"
started=$(awk -F', ' '$2 == "started" { print $5 }' <<<"$list" | paste -sd, -)
[ -n "$started" ] || fail "the etcd cluster lists no started member"
echo "an existing cluster: $(awk -F', ' '$2 == "started"' <<<"$list" | wc -l) started members"
echo "ETCD_CLUSTER=$started" >>"$KSW_OUTPUT"
