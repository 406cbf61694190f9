#!/bin/bash
# `kswizard remove` with external etcd, before anything changes: the first master that stays must
# hold the etcd CA's key, as it issues the certificates of members added later. Every master keeps
# it since the install's etcd-certs; a cluster installed before that kept it on the first master
# only, and removing that master would lose it.
set -euo pipefail
if [ -s /etc/etcd/pki/ca.key ]; then
  echo "the etcd CA key is here ($KSW_NODE keeps it for later members)"
  exit 0
fi
echo "FAIL  $KSW_NODE has no etcd CA key (/etc/etcd/pki/ca.key): run \`kswizard install\` first (it keeps the key on every master), then remove"
exit 1
