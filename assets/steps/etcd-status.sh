#!/bin/bash
# The etcd cluster's health as this node sees it: a line per member of KSW_ETCD
# (`MEMBER <ip> healthy|unhealthy`), then the revision and key count of the first healthy one
# (`REVISION <n>`, `KEYS <n>`). Exit 0 when every member is healthy. Run by `kswizard etcd restore`
# before it changes anything (KSW_WAIT=0: one look), and as the restore's check that the restored
# members are healthy (waits up to KSW_WAIT seconds, 100 by default, inside the step's timeout).
set -euo pipefail
if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  pki=/etc/kubernetes/pki/etcd cert=healthcheck-client
else
  pki=/etc/etcd/pki cert=member
fi
ctl() {
  ETCDCTL_API=3 etcdctl --cacert "$pki/ca.crt" --cert "$pki/$cert.crt" --key "$pki/$cert.key" \
    --dial-timeout 2s --command-timeout 5s "$@"
}
look() {
  local ip sick=0 first=""
  report=""
  for ip in ${KSW_ETCD//,/ }; do
    if ctl --endpoints "https://$ip:2379" endpoint health >/dev/null 2>&1; then
      report+="MEMBER $ip healthy"$'\n'
      first=${first:-$ip}
    else
      report+="MEMBER $ip unhealthy"$'\n'
      sick=1
    fi
  done
  if [ -n "$first" ]; then
    local count
    count=$(ctl --endpoints "https://$first:2379" get "" --prefix --keys-only --limit 1 -w json 2>/dev/null || true)
    report+="REVISION $(sed -n 's/.*"revision":\([0-9]*\).*/\1/p' <<<"$count")"$'\n'
    report+="KEYS $(sed -n 's/.*"count":\([0-9]*\).*/\1/p' <<<"$count")"$'\n'
  fi
  return "$sick"
}
deadline=$((SECONDS + ${KSW_WAIT:-100}))
while ! look; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    printf '%s' "$report"
    exit 1
  fi
  sleep 1
done
printf '%s' "$report"
