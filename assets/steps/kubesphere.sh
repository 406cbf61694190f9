#!/bin/bash
# KubeSphere on the first master, last: the bundle's kubesphere-installer.yaml and a minimal
# ClusterConfiguration (ks-installer's object) for this cluster, applied with the admin kubeconfig;
# then wait for the console's NodePort on every node, and through the LB's console listener when
# console_lb is set. Publishes the console's URLs. kubectl apply is idempotent: a re-run applies
# the same objects again and waits again.
# `kubesphere.sh --render` only prints the ClusterConfiguration (for tests).
set -euo pipefail
installer=/etc/kswizard/addons/kubesphere-installer.yaml
config=/etc/kswizard/addons/cluster-configuration.yaml
port=30880
export KUBECONFIG=/etc/kubernetes/admin.conf

fail() { echo "FAIL  $*"; exit 1; }
nodes() { tr , '\n' <<<"$KSW_MASTERS,$KSW_WORKERS" | grep . | awk '!seen[$0]++'; }

# ks-installer's ClusterConfiguration, its required parts only: the external etcd (monitored by
# endpoint), the console as a NodePort on $port (spec.common.core.console, ks-installer 3.2 and
# later); every optional component left off.
render() {
  local version=$1
  cat <<YAML
apiVersion: installer.kubesphere.io/v1alpha1
kind: ClusterConfiguration
metadata:
  name: ks-installer
  namespace: kubesphere-system
  labels:
    version: $version
spec:
  persistence:
    storageClass: ""
  authentication:
    jwtSecret: ""
  etcd:
    monitoring: false
    endpointIps: $KSW_ETCD
    port: 2379
    tlsEnable: true
  common:
    core:
      console:
        enableMultiLogin: true
        port: $port
        type: NodePort
  alerting:
    enabled: false
  auditing:
    enabled: false
  devops:
    enabled: false
  events:
    enabled: false
  logging:
    enabled: false
  metrics_server:
    enabled: false
  openpitrix:
    store:
      enabled: false
  servicemesh:
    enabled: false
YAML
}

# The installer's version, from its image tag (the ClusterConfiguration carries it as a label).
version=v3.4.1
if [ -s "$installer" ]; then
  tag=$(grep -o 'ks-installer:v[0-9][0-9.]*' "$installer" | head -n 1 || true)
  [ -n "$tag" ] && version=${tag#ks-installer:}
fi
if [ "${1:-}" = --render ]; then
  render "$version"
  exit 0
fi

[ -s "$installer" ] || fail "$installer is missing: the bundle delivers it (bundle: in conf/kswizard.yaml); put KubeSphere's kubesphere-installer.yaml there"
[ -s "$KUBECONFIG" ] || fail "$KUBECONFIG is missing: kubeadm-init has not run on this node"
if [ "${KSW_CONSOLE_LB:-0}" = 1 ] && [ "$KSW_LB_MODE" = none ]; then
  fail "console_lb is set in conf/kswizard.yaml but there is no load balancer (lb_mode none): configure one, or remove console_lb"
fi

new=$(mktemp "$config.XXXXXX")
render "$version" >"$new"
chmod 644 "$new"
mv -f "$new" "$config"
echo "applying the KubeSphere installer ($version) and its ClusterConfiguration"
kubectl apply -f "$installer"
# The ClusterConfiguration's kind exists once the installer's CRD is established: a few seconds
# on a real apiserver, during which kubectl says "no matches for kind".
for try in $(seq 1 30); do
  kubectl apply -f "$config" && break
  [ "$try" -lt 30 ] || fail "the ClusterConfiguration was refused 30 times (above): is the installer's CRD clusterconfigurations.installer.kubesphere.io there? kubectl get crd"
  sleep 2
done

# The console answers with HTTP 200 at $1; curl's words otherwise.
answers() { curl -sS -o /dev/null --max-time 3 -w '%{http_code}' "$1" 2>&1; }

# The installer takes minutes on real hosts: wait on every node's NodePort, then the LB's,
# bounded inside the plan's timeout (1800 s) so what is missing prints.
urls=()
while read -r ip; do urls+=("http://$ip:$port/"); done < <(nodes)
[ "${KSW_CONSOLE_LB:-0}" = 1 ] && urls+=("http://$KSW_LB_ADDRESS:$port/")
deadline=$((SECONDS + 1700))
for url in "${urls[@]}"; do
  while seen=$(answers "$url"); [ "$seen" != 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] ||
      fail "the console does not answer at $url ($seen): see kubectl -n kubesphere-system logs deploy/ks-installer"
    sleep 2
  done
  echo "ok    console answers at $url"
done

{
  echo "CONSOLE_URL=http://$KSW_FIRST_MASTER:$port"
  [ "${KSW_CONSOLE_LB:-0}" = 1 ] && echo "CONSOLE_LB_URL=http://$KSW_LB_ADDRESS:$port"
  true
} >>"$KSW_OUTPUT"
echo "KubeSphere console: http://<any node>:$port (e.g. http://$KSW_FIRST_MASTER:$port)"
[ "${KSW_CONSOLE_LB:-0}" = 1 ] && echo "KubeSphere console through the load balancer: http://$KSW_LB_ADDRESS:$port"
echo "KubeSphere installed"
