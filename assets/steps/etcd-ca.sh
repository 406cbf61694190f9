#!/bin/bash
# The etcd CA, made once on the first master and handed to the etcd hosts and masters through the
# step outputs (the engine keeps outputs out of logs). Each node then issues its own certificates.
set -euo pipefail
pki=/etc/etcd/pki
mkdir -p "$pki"
if [ -s "$pki/ca.crt" ] && [ -s "$pki/ca.key" ]; then
  echo "etcd CA exists, kept"
elif [ -s "$pki/ca.crt" ]; then
  # A new CA would cut this master off the running members: never made over an existing one.
  echo "FAIL  $pki/ca.crt is here without its key: copy ca.key from another master of this cluster (or remove /etc/etcd/pki and the etcd data to start over)"
  exit 1
else
  (umask 077; openssl ecparam -name prime256v1 -genkey -noout -out "$pki/ca.key")
  openssl req -x509 -new -key "$pki/ca.key" -days 3650 -subj "/CN=kswizard-etcd-ca" -out "$pki/ca.crt"
  echo "etcd CA created"
fi
{
  echo "ETCD_CA_CRT=$(base64 -w0 "$pki/ca.crt")"
  echo "ETCD_CA_KEY=$(base64 -w0 "$pki/ca.key")"
} >>"$KSW_OUTPUT"
echo "etcd CA published"
