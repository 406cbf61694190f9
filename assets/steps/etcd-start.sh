#!/bin/bash
# Start this host's etcd member, bound to the node IP, TLS for clients and peers. Members are named
# after their IPs so that every node derives the same --initial-cluster from KSW_ETCD alone.
set -euo pipefail
pki=/etc/etcd/pki
data=/var/lib/etcd/data
pidfile=/var/lib/etcd/etcd.pid
member() { echo "etcd-${1//./-}"; }

if [ -s "$pidfile" ] && grep -qa etcd "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; then
  echo "etcd already running (pid $(cat "$pidfile"))"
  exit 0
fi
if systemctl is-active --quiet kswizard-etcd.service 2>/dev/null; then
  echo "etcd already running (systemd unit kswizard-etcd)"
  exit 0
fi
cluster=""
for ip in ${KSW_ETCD//,/ }; do
  cluster="${cluster:+$cluster,}$(member "$ip")=https://$ip:2380"
done
state=new
[ -d "$data/member" ] && state=existing
mkdir -p "$data" && chmod 700 "$data"
args=(--name "$(member "$KSW_IP")" --data-dir "$data"
  --listen-client-urls "https://$KSW_IP:2379" --advertise-client-urls "https://$KSW_IP:2379"
  --listen-peer-urls "https://$KSW_IP:2380" --initial-advertise-peer-urls "https://$KSW_IP:2380"
  --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token kswizard-etcd
  --cert-file "$pki/member.crt" --key-file "$pki/member.key" --trusted-ca-file "$pki/ca.crt" --client-cert-auth
  --peer-cert-file "$pki/member.crt" --peer-key-file "$pki/member.key" --peer-trusted-ca-file "$pki/ca.crt"
  --peer-client-cert-auth)
echo "starting etcd $(member "$KSW_IP") ($state cluster: $cluster)"

if [ -d /run/systemd/system ]; then
  # A real host: a unit of its own (Debian's etcd.service serves localhost with its own data).
  unit=/etc/systemd/system/kswizard-etcd.service
  printf '[Unit]\nDescription=etcd for Kubernetes (kswizard)\nAfter=network-online.target\n\n[Service]\nExecStart=%s\nRestart=always\nRestartSec=5\nLimitNOFILE=65536\n\n[Install]\nWantedBy=multi-user.target\n' \
    "$(command -v etcd) ${args[*]}" >"$unit"
  systemctl daemon-reload
  systemctl enable --now kswizard-etcd.service
  systemctl is-active --quiet kswizard-etcd.service && echo "etcd started (systemd unit kswizard-etcd)" && exit 0
  echo "FAIL  kswizard-etcd.service is not active:"; journalctl -u kswizard-etcd.service -n 20 --no-pager; exit 1
fi

# No systemd (containers, the lab): a session of its own, so it outlives this SSH session.
setsid etcd "${args[@]}" </dev/null >>/var/lib/etcd/etcd.log 2>&1 &
echo $! >"$pidfile"
sleep 1
if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "etcd started (pid $(cat "$pidfile"))"
else echo "FAIL  etcd exited:"; tail -n 20 /var/lib/etcd/etcd.log; exit 1; fi
