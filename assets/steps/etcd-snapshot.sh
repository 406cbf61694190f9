#!/bin/bash
# `kswizard etcd backup`: an etcd snapshot from the first member of KSW_ETCD that is healthy, saved
# on this node (0600, in a 0700 dir) for kswizard to fetch to the taskbox; kswizard removes it
# from the node once its copy checks. The snapshot holds the cluster's secrets: it is never printed.
set -euo pipefail
umask 077
if [ "${KSW_ETCD_TOPOLOGY:-external}" = stacked ]; then
  # kubeadm's local etcd: its healthcheck client, a client of every member.
  pki=/etc/kubernetes/pki/etcd cert=healthcheck-client
else
  pki=/etc/etcd/pki cert=member
fi
ctl() {
  ETCDCTL_API=3 etcdctl --cacert "$pki/ca.crt" --cert "$pki/$cert.crt" --key "$pki/$cert.key" \
    --dial-timeout 3s --command-timeout 60s "$@"
}
dir=/var/lib/kswizard-backup
mkdir -p "$dir" && chmod 700 "$dir"
snap=$dir/etcd-snapshot.db
rm -f "$snap" "$snap.part"
used=""
for ip in ${KSW_ETCD//,/ }; do
  if ! ctl --endpoints "https://$ip:2379" endpoint health >/dev/null 2>&1; then
    echo "member $ip is not healthy: next member"
    continue
  fi
  # Keys now, at about the snapshot's revision (read just before it), for `etcd restore`'s
  # "what will be lost": a range's count is all its keys, whatever the limit; no value is read.
  keys=$(ctl --endpoints "https://$ip:2379" get "" --prefix --keys-only --limit 1 -w json | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
  if ctl --endpoints "https://$ip:2379" snapshot save "$snap" >/dev/null 2>&1; then
    used=$ip
    break
  fi
  echo "member $ip did not give a snapshot: next member"
  rm -f "$snap" "$snap.part"
done
if [ -z "$used" ]; then
  echo "FAIL  no member of $KSW_ETCD gave a snapshot (none healthy?): \`kswizard status\`, then the members' logs"
  exit 1
fi
chmod 600 "$snap"
# etcdutl where etcd has it (3.5+), the older etcdctl's own subcommand otherwise.
if command -v etcdutl >/dev/null; then status=$(etcdutl snapshot status "$snap" -w json)
else status=$(ETCDCTL_API=3 etcdctl snapshot status "$snap" -w json); fi
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$status"; }
sum=$(sha256sum "$snap")
echo "snapshot taken from member $used: revision $(field revision), ${keys:-?} keys, $(stat -c %s "$snap") bytes"
{
  echo "SNAPSHOT_FILE=$snap"
  echo "SNAPSHOT_SHA256=${sum%% *}"
  echo "SNAPSHOT_SIZE=$(stat -c %s "$snap")"
  echo "SNAPSHOT_MEMBER=$used"
  echo "SNAPSHOT_REVISION=$(field revision)"
  echo "SNAPSHOT_KEYS=${keys:-}"
} >>"$KSW_OUTPUT"
