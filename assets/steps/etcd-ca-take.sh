#!/bin/bash
# `kswizard remove` with external etcd, on the first staying master: keep the etcd CA's key here
# (from etcd-ca-give.sh) unless it is here already, before its old holder is reset. The CA must
# be the one this node's certificates come from.
set -euo pipefail
pki=/etc/etcd/pki
if [ -s "$pki/ca.key" ]; then
  echo "the etcd CA key is here already"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
base64 -d <<<"$ETCD_CA_CRT" >"$tmp/ca.crt"
if [ -s "$pki/ca.crt" ] && ! cmp -s "$pki/ca.crt" "$tmp/ca.crt"; then
  echo "FAIL  the published etcd CA is not the one $pki/ca.crt holds: is this node part of this cluster?"
  exit 1
fi
mkdir -p "$pki"
(umask 077; base64 -d <<<"$ETCD_CA_KEY" >"$pki/ca.key.kswizard-new")
mv -f "$pki/ca.key.kswizard-new" "$pki/ca.key"
[ -s "$pki/ca.crt" ] || cp "$tmp/ca.crt" "$pki/ca.crt"
echo "the etcd CA key is now kept here ($pki/ca.key)"
