#!/bin/bash
# `kswizard remove`, on the first staying etcd host: remove the etcd members of the leaving hosts
# (by their peer URLs' addresses, KSW_LEAVING), one at a time, unhealthy ones first, each only
# while the staying members are healthy (kswizard checked the quorum arithmetic before the
# removal began). A member no longer listed was removed by an earlier run.
set -euo pipefail
fail() { echo "FAIL  $*"; exit 1; }
if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  pki=/etc/kubernetes/pki/etcd cert=healthcheck-client staying=$KSW_MASTERS
else
  pki=/etc/etcd/pki cert=member staying=$KSW_ETCD
fi
endpoints=$(for ip in ${staying//,/ }; do printf 'https://%s:2379,' "$ip"; done)
ctl() { ETCDCTL_API=3 etcdctl --cacert "$pki/ca.crt" --cert "$pki/$cert.crt" --key "$pki/$cert.key" \
  --dial-timeout 3s --command-timeout 10s "$@"; }

# "id, status, name, peer URLs, client URLs, learner" lines of the leaving members.
leaving() {
  ctl --endpoints "${endpoints%,}" member list -w simple | while IFS=', ' read -r id _ name peer client _; do
    ip=${peer#https://}
    ip=${ip%:*}
    if [[ ",$KSW_LEAVING," == *",$ip,"* ]]; then echo "$id $name ${client:--}"; fi
  done
}
wait_healthy() {
  for _ in $(seq 60); do
    ctl --endpoints "${endpoints%,}" endpoint health >/dev/null 2>&1 && return 0
    sleep 1
  done
  ctl --endpoints "${endpoints%,}" endpoint health || true
  fail "the staying etcd members are not all healthy: no member is removed until they are"
}

members=$(leaving) || fail "etcdctl member list failed (above)"
if [ -z "$members" ]; then
  echo "no etcd member of the leaving hosts ($KSW_LEAVING_NAMES) is in the cluster"
  exit 0
fi
# Unhealthy first: removing a member that does not answer only lowers the quorum needed.
ordered=$(while read -r id name client; do
  if [ "$client" != - ] && ctl --endpoints "$client" endpoint health >/dev/null 2>&1; then
    echo "1 $id $name"
  else
    echo "0 $id $name"
  fi
done <<<"$members" | sort -n)
while read -r healthy id name; do
  wait_healthy
  ctl --endpoints "${endpoints%,}" member remove "$id"
  echo "removed etcd member $name ($id, $([ "$healthy" = 1 ] && echo healthy || echo not answering))"
done <<<"$ordered"
wait_healthy
echo "etcd members now:"
ctl --endpoints "${endpoints%,}" member list -w table
