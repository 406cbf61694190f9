#!/bin/bash
# Start this host's etcd member, bound to the node IP, TLS for clients and peers. Members are named
# after their IPs so that every node derives the same --initial-cluster from KSW_ETCD alone.
#
# On a first install (ETCD_CLUSTER=new, from etcd-members) every member starts as part of a new
# cluster. A host added to [etcd] later joins the running cluster (ETCD_CLUSTER: its members' client
# URLs), one host at a time (the plan runs this step serially): a snapshot of the cluster first,
# kept on this host under /var/lib/kswizard/backups/; `member add --learner` (a learner does not
# vote, so the quorum does not change while it catches up); the member started with
# --initial-cluster-state existing; `member promote` once it has caught up. A re-run finds itself
# added, started or promoted and goes on from there.
set -euo pipefail
pki=/etc/etcd/pki
data=/var/lib/etcd/data
pidfile=/var/lib/etcd/etcd.pid
backups=/var/lib/kswizard/backups
member() { echo "etcd-${1//./-}"; }
name=$(member "$KSW_IP")
peer=https://$KSW_IP:2380
fail() { echo "FAIL  $*"; exit 1; }

running() {
  { [ -s "$pidfile" ] && grep -qa etcd "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; } ||
    systemctl is-active --quiet kswizard-etcd.service 2>/dev/null
}

# start STATE INITIAL_CLUSTER
start() {
  local args
  mkdir -p "$data" && chmod 700 "$data"
  args=(--name "$name" --data-dir "$data"
    --listen-client-urls "https://$KSW_IP:2379" --advertise-client-urls "https://$KSW_IP:2379"
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer"
    --initial-cluster "$2" --initial-cluster-state "$1" --initial-cluster-token kswizard-etcd
    --cert-file "$pki/member.crt" --key-file "$pki/member.key" --trusted-ca-file "$pki/ca.crt" --client-cert-auth
    --peer-cert-file "$pki/member.crt" --peer-key-file "$pki/member.key" --peer-trusted-ca-file "$pki/ca.crt"
    --peer-client-cert-auth)
  echo "starting etcd $name ($1 cluster: $2)"
  if [ -d /run/systemd/system ]; then
    # A real host: a unit of its own (Debian's etcd.service serves localhost with its own data).
    unit=/etc/systemd/system/kswizard-etcd.service
    printf '[Unit]\nDescription=etcd for Kubernetes (kswizard)\nAfter=network-online.target\n\n[Service]\nExecStart=%s\nRestart=always\nRestartSec=5\nLimitNOFILE=65536\n\n[Install]\nWantedBy=multi-user.target\n' \
      "$(command -v etcd) ${args[*]}" >"$unit"
    systemctl daemon-reload
    systemctl enable --now kswizard-etcd.service
    systemctl is-active --quiet kswizard-etcd.service && echo "etcd started (systemd unit kswizard-etcd)" && return 0
    echo "FAIL  kswizard-etcd.service is not active:"; journalctl -u kswizard-etcd.service -n 20 --no-pager; exit 1
  fi
  # No systemd (containers, the lab): a session of its own, so it outlives this SSH session.
  setsid etcd "${args[@]}" </dev/null >>/var/lib/etcd/etcd.log 2>&1 &
  echo $! >"$pidfile"
  sleep 1
  if kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "etcd started (pid $(cat "$pidfile"))"
  else echo "FAIL  etcd exited:"; tail -n 20 /var/lib/etcd/etcd.log; exit 1; fi
}

# The whole cluster from KSW_ETCD: a first install's members, or a member's restart (etcd reads
# --initial-cluster only when its data dir is new).
all=""
for ip in ${KSW_ETCD//,/ }; do
  all="${all:+$all,}$(member "$ip")=https://$ip:2380"
done

if [ "$ETCD_CLUSTER" = new ]; then
  if running; then echo "etcd already running"; exit 0; fi
  state=new
  [ -d "$data/member" ] && state=existing
  start "$state" "$all"
  exit 0
fi

# --- joining a running cluster -----------------------------------------------------------------
ctl() {
  ETCDCTL_API=3 etcdctl --endpoints "$ETCD_CLUSTER" --cacert "$pki/ca.crt" --cert "$pki/member.crt" \
    --key "$pki/member.key" --dial-timeout 3s --command-timeout 10s "$@"
}
# ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER; this member's line.
list=$(ctl member list) || fail "the etcd cluster ($ETCD_CLUSTER) does not list its members: $list"
mine=$(awk -F', ' -v p="$peer" '$4 == p' <<<"$list")
voters=$(awk -F', ' '$6 == "false"' <<<"$list" | wc -l)

if [ -n "$mine" ] && [ "$(awk -F', ' '{print $6}' <<<"$mine")" = false ]; then
  echo "$name is a voting member already"
  running && { echo "etcd already running"; exit 0; }
  start existing "$all"
  exit 0
fi

if [ -z "$mine" ]; then
  [ -d "$data/member" ] && fail "$data holds another cluster's data and $name is not a member of this one: move $data away (it is not used) and run the install again"
  # A snapshot of the cluster as it is before it changes, on this host.
  mkdir -p "$backups" && chmod 700 "$backups"
  snap=$backups/etcd-before-adding-$name-$(date -u +%Y%m%dT%H%M%SZ).db
  taken=""
  for ep in ${ETCD_CLUSTER//,/ }; do
    if ETCDCTL_API=3 etcdctl --endpoints "$ep" --cacert "$pki/ca.crt" --cert "$pki/member.crt" \
      --key "$pki/member.key" --dial-timeout 3s --command-timeout 60s snapshot save "$snap.part" >/dev/null 2>&1; then
      chmod 600 "$snap.part" && mv "$snap.part" "$snap" && taken=$ep && break
    fi
    rm -f "$snap.part"
  done
  [ -n "$taken" ] || fail "no member of $ETCD_CLUSTER gave a snapshot: the cluster is not healthy enough to add a member"
  echo "snapshot of the cluster before adding $name: $snap on $KSW_NODE ($(stat -c %s "$snap") bytes, from $taken)"
  echo "adding $name as a learner: the cluster has $voters voting members (quorum $((voters / 2 + 1))); a learner does not vote, so the quorum stays until it is promoted"
  # etcd takes no member while one it counts on has been connected for less than 5 s ("unhealthy
  # cluster": one just promoted or restarted): waited for. It takes one learner at a time: with
  # this step serial, another learner is another host's left by a run cut short, which gets its
  # turn while this one waits for its retry.
  deadline=$((SECONDS + 100))
  until out=$(ctl member add "$name" --peer-urls "$peer" --learner 2>&1); do
    if [[ $out == *"too many learner members"* ]]; then
      fail "etcd has a learner already ($(awk -F', ' '$6 == "true" { print $3 ($3 == "" ? $4 : "") }' <<<"$list" | paste -sd' ' -)), added by a run cut short: its host joins first, then this one (the step is retried)"
    fi
    [[ $out == *"unhealthy cluster"* && $SECONDS -lt $deadline ]] ||
      fail "etcdctl member add $name --learner failed: $out"
    echo "etcd cannot take a member yet (${out##*Error: }): waiting to add $name"
    sleep 2
  done
  initial=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' <<<"$out")
  [ -n "$initial" ] || fail "etcdctl member add printed no ETCD_INITIAL_CLUSTER: $out"
  list=$(ctl member list)
  mine=$(awk -F', ' -v p="$peer" '$4 == p' <<<"$list")
else
  echo "$name was added as a learner before: going on"
  # The cluster as the member list has it; the learner not started yet has no name there.
  initial=$(awk -F', ' -v p="$peer" -v n="$name" '{ print ($4 == p ? n : $3) "=" $4 }' <<<"$list" | paste -sd, -)
fi
id=$(awk -F', ' '{print $1}' <<<"$mine")
[ -n "$id" ] || fail "$name is not in the member list after member add: $list"

if running; then echo "etcd already running"; else start existing "$initial"; fi

# Promoted once it has caught up with the leader (etcd refuses before: "not in sync").
deadline=$((SECONDS + 100))
while :; do
  if out=$(ctl member promote "$id" 2>&1); then
    echo "$name promoted to a voting member"
    break
  fi
  [ "$SECONDS" -lt "$deadline" ] || fail "$name (learner $id) was not promoted within 100 s: $out"
  sleep 1
done
voters=$(ctl member list | awk -F', ' '$6 == "false"' | wc -l)
if [ $((voters % 2)) = 0 ]; then
  echo "etcd has $voters voting members now: an even count, for the moment only ($voters members tolerate $(((voters - 1) / 2)) failure(s), no more than $((voters - 1)) do); the next etcd host this install adds makes the count odd"
else
  echo "etcd has $voters voting members (quorum $((voters / 2 + 1)), tolerates $(((voters - 1) / 2)) failed)"
fi
