#!/bin/bash
# etcd certificates from the shared CA: a server+peer certificate on etcd hosts, the apiserver's
# client certificate on masters. Certificates that verify against the CA and name this node are kept.
set -euo pipefail
pki=/etc/etcd/pki
mkdir -p "$pki"
has_role() { [[ ",$KSW_ROLES," == *",$1,"* ]]; }

ca=$(mktemp -d "${TMPDIR:-/tmp}/ksw-etcd-ca.XXXXXX")
trap 'rm -rf "$ca"' EXIT
base64 -d <<<"$ETCD_CA_CRT" >"$ca/ca.crt"
(umask 077; base64 -d <<<"$ETCD_CA_KEY" >"$ca/ca.key")
if [ -s "$pki/ca.crt" ] && ! cmp -s "$pki/ca.crt" "$ca/ca.crt"; then
  echo "FAIL  $pki/ca.crt is another CA's: remove /etc/etcd/pki (and the etcd data) to start over"
  exit 1
fi
cp "$ca/ca.crt" "$pki/ca.crt"
# Every master keeps the CA's key (as kubeadm's control-plane join copies its CAs): whichever is
# the first master issues the certificates of members added later, also once the first one died.
if has_role master && ! cmp -s "$ca/ca.key" "$pki/ca.key" 2>/dev/null; then
  (umask 077; cp "$ca/ca.key" "$pki/ca.key.kswizard-new")
  mv -f "$pki/ca.key.kswizard-new" "$pki/ca.key"
  echo "etcd CA key kept for later members"
fi

# issue NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
issue() {
  local name=$1 cn=$2 eku=$3 sans=${4:-}
  if [ -s "$pki/$name.crt" ] && openssl verify -CAfile "$pki/ca.crt" "$pki/$name.crt" >/dev/null 2>&1 &&
     { [ -z "$sans" ] || openssl x509 -in "$pki/$name.crt" -noout -ext subjectAltName | grep -q "IP Address:$KSW_IP\b"; }; then
    echo "$name certificate valid, kept"
    return
  fi
  (umask 077; openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$name.key")
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$ca/$name.ext"
  openssl req -new -key "$pki/$name.key" -subj "/CN=$cn" |
    openssl x509 -req -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -CAserial "$ca/serial" \
      -days 3650 -extfile "$ca/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  echo "$name certificate issued"
}

if has_role etcd; then
  issue member "$KSW_NODE" serverAuth,clientAuth "IP:$KSW_IP,IP:127.0.0.1,DNS:$KSW_NODE,DNS:localhost"
fi
if has_role master; then
  issue apiserver-etcd-client kube-apiserver-etcd-client clientAuth
fi
