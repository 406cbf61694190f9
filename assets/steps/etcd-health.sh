#!/bin/bash
# Wait until this host's etcd member is healthy, which needs a quorum of the cluster.
set -euo pipefail
pki=/etc/etcd/pki
# Gives up after 100 s, inside the plan's 120 s timeout, so its own diagnosis below is printed.
deadline=$((SECONDS + 100))
i=0
while [ "$SECONDS" -lt "$deadline" ]; do
  i=$((i + 1))
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
