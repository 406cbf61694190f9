#!/bin/bash
# `kswizard remove` with external etcd, on the first staying master and the leaving hosts: the one
# that holds the etcd CA's key (etcd-ca.sh made it on the first master; only there) publishes it,
# so that etcd-ca-take.sh gives it to the first master that stays (who issues the certificates of
# etcd members added later). The others publish nothing.
set -euo pipefail
pki=/etc/etcd/pki
if [ -s "$pki/ca.key" ] && [ -s "$pki/ca.crt" ]; then
  {
    echo "ETCD_CA_CRT=$(base64 -w0 "$pki/ca.crt")"
    echo "ETCD_CA_KEY=$(base64 -w0 "$pki/ca.key")"
  } >>"$KSW_OUTPUT"
  echo "this node holds the etcd CA: published for the first staying master"
else
  echo "this node does not hold the etcd CA key"
fi
