#!/bin/bash
# The apiserver's etcd endpoint list (--etcd-servers in its static pod manifest) made KSW_ETCD's,
# the kubeadm way: the manifest is rewritten and the kubelet restarts the apiserver. A membership
# step run on one master at a time (the plan runs it serially): each waits until its apiserver runs
# with the new list and is ready again, so the others keep serving meanwhile. On the first master
# kubeadm's ClusterConfiguration gets the list too (kubeadm-config.yaml, uploaded), so a master
# that joins later starts with it.
set -euo pipefail
manifest=/etc/kubernetes/manifests/kube-apiserver.yaml
config=/etc/kubernetes/kubeadm-config.yaml
fail() { echo "FAIL  $*"; exit 1; }
[ -s "$manifest" ] || fail "$manifest is missing: kubeadm init / join has not made this master's apiserver"

want=$(for ip in ${KSW_ETCD//,/ }; do printf 'https://%s:2379,' "$ip"; done)
want=${want%,}
have=$(sed -n 's/^ *- --etcd-servers=//p' "$manifest")
if [ "$have" = "$want" ]; then
  echo "the apiserver's etcd endpoints are $want already"
else
  # Written beside the manifests dir, then renamed in: the kubelet reads every file in it.
  mkdir -p /etc/kubernetes/tmp
  new=$(mktemp /etc/kubernetes/tmp/kube-apiserver.yaml.XXXXXX)
  sed "s|^\( *- --etcd-servers=\).*|\1$want|" "$manifest" >"$new"
  grep -qxF -- "    - --etcd-servers=$want" "$new" || { rm -f "$new"; fail "$manifest has no '- --etcd-servers=' line to rewrite"; }
  chmod 600 "$new"
  mv -f "$new" "$manifest"
  echo "etcd endpoints ${have:-(none)} -> $want: the kubelet restarts the apiserver"
fi

# The apiserver runs with the new list: a process with exactly that argument (the real apiserver's
# container and the lab's stand-in alike), then ready.
runs_with_list() {
  local pid
  for pid in $(pgrep -f apiserver); do
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--etcd-servers=$want" && return 0
  done
  return 1
}
deadline=$((SECONDS + 100))
until runs_with_list && [ "$(curl -sS --max-time 2 --cacert /etc/kubernetes/pki/ca.crt "https://$KSW_IP:6443/readyz" 2>/dev/null)" = ok ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the apiserver on $KSW_IP is not ready with --etcd-servers=$want within 100 s: see journalctl -u kubelet"
  sleep 0.5
done
echo "apiserver on $KSW_IP:6443 ready with etcd $want"

if [ "$KSW_IP" = "$KSW_FIRST_MASTER" ] && [ -s "$config" ]; then
  # The endpoints list under etcd.external in kubeadm's config, replaced by KSW_ETCD's.
  new=$(mktemp "$config.XXXXXX")
  awk -v list="$want" '
    inlist && /^ *- / { next }
    inlist { inlist = 0 }
    /^ *endpoints:$/ { print; n = split(list, e, ","); for (i = 1; i <= n; i++) print "    - " e[i]; inlist = 1; next }
    { print }
  ' "$config" >"$new"
  mv -f "$new" "$config"
  # Uploaded every time: cheap, and a run cut off after the file was written still uploads it.
  kubeadm init phase upload-config kubeadm --config "$config"
  echo "kubeadm's ClusterConfiguration: etcd endpoints $want"
fi
