#!/bin/bash
# Wait until this host's etcd member is healthy, which needs a quorum of the cluster.
set -euo pipefail
pki=/etc/etcd/pki
for i in $(seq 1 90); do
  if out=$(ETCDCTL_API=3 etcdctl --endpoints "https://$KSW_IP:2379" --cacert "$pki/ca.crt" \
      --cert "$pki/member.crt" --key "$pki/member.key" --dial-timeout 2s endpoint health 2>&1); then
    echo "$out"
    exit 0
  fi
  [ $((i % 5)) = 1 ] && echo "waiting for etcd quorum: $out"
  sleep 1
done
echo "FAIL  etcd on $KSW_IP is not healthy"
tail -n 20 /var/lib/etcd/etcd.log
exit 1
