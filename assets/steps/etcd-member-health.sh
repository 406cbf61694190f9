#!/bin/sh
# `kswizard remove`'s pre-check, run by kswizard on a staying master before anything changes (it
# only reads): the etcd members and whether each answers, as src/ops/quorum.rs reads them:
# `MEMBER name peer-url healthy|unhealthy` lines, then END; `FAIL reason` when it cannot tell.
# kswizard sets KSW_ETCD_URLS (the client URLs to ask, comma-separated) and KSW_ETCD_TOPOLOGY.
if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  pki=/etc/kubernetes/pki/etcd cert=healthcheck-client
else
  pki=/etc/etcd/pki cert=apiserver-etcd-client
fi
if [ ! -s "$pki/$cert.key" ]; then
  echo "FAIL  $pki/$cert.key is missing on this master: is it installed?"
  exit 0
fi
ctl() { ETCDCTL_API=3 etcdctl --cacert "$pki/ca.crt" --cert "$pki/$cert.crt" --key "$pki/$cert.key" \
  --dial-timeout 2s --command-timeout 4s "$@"; }
if ! list=$(ctl --endpoints "$KSW_ETCD_URLS" member list -w simple 2>&1); then
  echo "FAIL  etcdctl member list at $KSW_ETCD_URLS: $(echo "$list" | tail -n 1)"
  exit 0
fi
echo "$list" | while IFS=', ' read -r _ _ name peer client _; do
  health=unhealthy
  # A member added but never started has no client URL (and no name): it cannot answer.
  case $client in
    https://*) ctl --endpoints "$client" endpoint health >/dev/null 2>&1 && health=healthy ;;
  esac
  echo "MEMBER ${name:--} $peer $health"
done
echo END
