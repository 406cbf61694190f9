#!/bin/bash
# The built-in apiserver load balancer, on every master (lb_mode: built-in), as kubeadm's HA
# guidance has it: haproxy on the LB port (not 6443, the apiserver's) in TCP mode in front of every
# master's apiserver, checked with HTTPS GET /readyz; keepalived moving the VIP between the masters
# by unicast VRRP (multicast is often filtered), following the local haproxy. Not the apiserver:
# the VIP would move every time an apiserver starts or restarts.
#
# Re-running changes nothing and restarts nothing while the configs are the same; a changed config
# is checked (haproxy -c, keepalived --config-test) before it replaces the old one, then reloaded.
#
# For tests: `lb-built-in.sh --render-haproxy` prints haproxy.cfg; `--render-keepalived DIR IFACE`
# writes keepalived.conf and its check script into DIR. Neither touches the system.
set -euo pipefail

haproxy_cfg=/etc/haproxy/haproxy.cfg
keepalived_dir=/etc/keepalived
check_name=kswizard-check-haproxy.sh
marker="# kswizard: built-in apiserver load balancer (written by kswizard; edits are overwritten)"

fail() { echo "FAIL  $*"; exit 1; }
masters() { tr , '\n' <<<"$KSW_MASTERS" | grep .; }

# This master's place in KSW_MASTERS (0 for the first), and how many there are.
index=-1 count=0
while read -r ip; do
  [ "$ip" = "$KSW_IP" ] && index=$count
  count=$((count + 1))
done < <(masters)

render_haproxy() {
  cat <<CFG
$marker
global
  log /dev/log local0 notice
  # 'kswizard lb status' reads 'show stat' here over SSH, and keepalived's check 'show info'.
  stats socket ipv4@127.0.0.1:$KSW_HAPROXY_STATS_PORT level user

defaults
  mode tcp
  log global
  option tcplog
  option dontlognull
  timeout connect 5s
  # kubectl logs -f, exec and watches stay open and quiet for long: 20 s would cut them.
  timeout client 24h
  timeout server 24h
  timeout check 3s

frontend kube-apiserver
  # All addresses: the VIP, wherever it is now, needs no nonlocal bind.
  bind *:$KSW_LB_PORT
  default_backend kube-apiserver

backend kube-apiserver
  balance roundrobin
  # TLS to the apiserver, certificate not checked (the check only asks whether it is ready).
  option httpchk GET /readyz
  http-check expect status 200
  # A restarted haproxy starts its servers down: checks every 0.5 s while a server is down bring
  # them up in about 1 s instead of two 2 s intervals, while the VIP stays put.
  default-server inter 2s downinter 500ms fall 2 rise 2 check check-ssl verify none
CFG
  local ip
  # `kswizard lb status` knows the masters in `show stat` by these names.
  while read -r ip; do
    echo "  server apiserver-${ip//[.:]/-} $ip:6443"
  done < <(masters)
  [ "${KSW_CONSOLE_LB:-0}" = 1 ] && render_console
  true
}

# The KubeSphere console behind the VIP too (console_lb): HTTP on 30880, every node's NodePort
# checked with GET /. Bound to the VIP alone ("transparent": also where keepalived has not put it),
# so each node's own address:30880 stays the NodePort's. (With kube-proxy, NodePort rules also
# catch VIP:30880 on the holder; either way the console answers there.)
render_console() {
  cat <<CFG

frontend kubesphere-console
  mode http
  option httplog
  bind $KSW_LB_ADDRESS:30880 transparent
  timeout client 1m
  default_backend kubesphere-console

backend kubesphere-console
  mode http
  balance roundrobin
  timeout server 1m
  option httpchk GET /
  http-check expect status 200
  default-server inter 2s downinter 1s fall 2 rise 2 check
CFG
  local ip
  # `kswizard lb status` knows the nodes by these names.
  while read -r ip; do
    echo "  server console-${ip//[.:]/-} $ip:30880"
  done < <(tr , '\n' <<<"$KSW_MASTERS,$KSW_WORKERS" | grep . | awk '!seen[$0]++')
}

# keepalived's check: the local haproxy answers on its stats socket. It opens no connection to
# an apiserver (a connect to the frontend would, every second, through haproxy).
render_check() {
  cat <<CHECK
#!/bin/bash
$marker
exec timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$KSW_HAPROXY_STATS_PORT && printf "show info\\n" >&3 && grep -q "^Name: HAProxy" <&3'
CHECK
}

# keepalived.conf for the interface $2, its check script in the directory $1. Priorities fall by
# one per master in KSW_MASTERS order; a failing check takes away more than the whole spread, so
# a master whose haproxy is down always hands the VIP to one whose haproxy runs.
render_keepalived() {
  local dir=$1 iface=$2 ip
  local priority=$((200 - index)) weight=$((count + 10))
  cat <<CFG
$marker
global_defs {
  router_id $KSW_NODE
  script_user root
  enable_script_security
}

vrrp_script kswizard_haproxy {
  script "$dir/$check_name"
  interval 1
  timeout 3
  fall 2
  rise 2
  weight -$weight
}

vrrp_instance kswizard_apiserver {
  state BACKUP
  interface $iface
  virtual_router_id $KSW_KEEPALIVED_ROUTER_ID
  priority $priority
  advert_int 1
CFG
  # A single master has no peer (keepalived refuses an empty unicast_peer): it just holds the VIP.
  if [ "$count" -gt 1 ]; then
    echo "  unicast_src_ip $KSW_IP"
    echo "  # Only adverts from the peers below count."
    echo "  check_unicast_src"
    echo "  unicast_peer {"
    while read -r ip; do
      [ "$ip" = "$KSW_IP" ] || echo "    $ip"
    done < <(masters)
    echo "  }"
  fi
  cat <<CFG
  virtual_ipaddress {
    $KSW_LB_ADDRESS/32 dev $iface
  }
  track_script {
    kswizard_haproxy
  }
}
CFG
}

check_inputs() {
  [ "$index" -ge 0 ] || fail "this node's ip $KSW_IP is not among the masters ($KSW_MASTERS)"
  [ "$count" -le 100 ] || fail "$count masters: keepalived priorities here allow at most 100"
  [ "$KSW_LB_PORT" != 6443 ] || fail "the LB port is 6443, which the apiserver on this master uses: set loadbalancer_apiserver.port in conf/common.yaml to another port (e.g. 8443)"
  [[ $KSW_LB_ADDRESS =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "the VIP '$KSW_LB_ADDRESS' is not an IPv4 address: the built-in LB moves an IPv4 address between the masters; set loadbalancer_apiserver.address in conf/common.yaml"
  [ "$KSW_LB_ADDRESS" != "$KSW_IP" ] || fail "the VIP $KSW_LB_ADDRESS is this master's own address: pick a free address in the masters' subnet"
  if ! [[ $KSW_KEEPALIVED_ROUTER_ID =~ ^[0-9]+$ ]] || [ "$KSW_KEEPALIVED_ROUTER_ID" -lt 1 ] || [ "$KSW_KEEPALIVED_ROUTER_ID" -gt 255 ]; then
    fail "keepalived_router_id $KSW_KEEPALIVED_ROUTER_ID in conf/kswizard.yaml: expected 1 to 255"
  fi
}

case ${1:-} in
  --render-haproxy) render_haproxy; exit 0 ;;
  --render-keepalived)
    render_keepalived "$2" "$3" >"$2/keepalived.conf"
    render_check >"$2/$check_name"
    chmod 755 "$2/$check_name"
    exit 0
    ;;
esac

check_inputs

# The interface that carries the VIP: kswizard.yaml's keepalived_interface, else the one that
# holds this node's ip=.
if [ -n "$KSW_KEEPALIVED_INTERFACE" ]; then
  iface=$KSW_KEEPALIVED_INTERFACE
  ip link show dev "$iface" >/dev/null 2>&1 ||
    fail "keepalived_interface '$iface' (conf/kswizard.yaml) is not an interface of this node: name one of $(ip -o link show | awk -F': ' '{printf "%s ", $2}')"
else
  iface=$(ip -o addr show | awk -v ip="$KSW_IP" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }')
  [ -n "$iface" ] || fail "no interface of this node holds its ip $KSW_IP: fix ip= in hosts.ini, or set keepalived_interface in conf/kswizard.yaml"
fi
echo "VIP $KSW_LB_ADDRESS on $iface, VRRP router id $KSW_KEEPALIVED_ROUTER_ID, priority $((200 - index)) of $count masters"

# Install a package the node lacks from its package manager, and hold it there: an unattended
# upgrade would restart the apiserver's load balancer under the running cluster.
ensure_package() {
  local pkg=$1 tool=$2 log
  if command -v "$tool" >/dev/null; then
    echo "$pkg: $("$tool" -v 2>&1 | head -n 1)"
    return
  fi
  log=$(mktemp)
  echo "$pkg is not installed: installing it from this node's package manager"
  if command -v apt-get >/dev/null; then
    # Stale package lists are the usual reason an install fails; fetch them once and try again.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >"$log" 2>&1; then
      apt-get update -q >>"$log" 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >>"$log" 2>&1 ||
        { tail -n 5 "$log"; fail "apt-get could not install $pkg (no network or no repository that has it?): install the $pkg package on this node, from your mirror or by hand, then run the install again"; }
    fi
    apt-mark hold "$pkg" >/dev/null
    echo "$pkg installed with apt-get and held at $(dpkg-query -W -f '${Version}' "$pkg") (apt-mark unhold $pkg to let upgrades in)"
  elif command -v dnf >/dev/null || command -v yum >/dev/null; then
    local pm
    pm=$(command -v dnf || command -v yum)
    "$pm" install -y -q "$pkg" >"$log" 2>&1 ||
      { tail -n 5 "$log"; fail "$pm could not install $pkg (no network or no repository that has it?): install the $pkg package on this node, then run the install again"; }
    if "$pm" versionlock add "$pkg" >>"$log" 2>&1; then
      echo "$pkg installed with $pm and locked at $(rpm -q "$pkg") ($pm versionlock delete $pkg to let upgrades in)"
    else
      echo "$pkg installed with $pm as $(rpm -q "$pkg"); not locked: the versionlock plugin is missing"
    fi
  else
    fail "$pkg is not installed and this node has neither apt-get nor dnf nor yum: install $pkg on this node, then run the install again"
  fi
  rm -f "$log"
}

# Put the file $2 in place of $1 unless they are the same; true when it changed. A file kswizard
# did not write is kept once as $1.kswizard-orig.
replace() {
  local dest=$1 new=$2
  if cmp -s "$dest" "$new"; then
    rm -f "$new"
    return 1
  fi
  # Called as `replace ... && changed=1`, where set -e does not act: every failure is said here.
  if [ -e "$dest" ] && [ ! -e "$dest.kswizard-orig" ] && ! grep -qxF "$marker" "$dest"; then
    cp -p "$dest" "$dest.kswizard-orig" || fail "cannot keep the earlier $dest as $dest.kswizard-orig"
    echo "kept the earlier $dest as $dest.kswizard-orig"
  fi
  chmod "$3" "$new" || fail "cannot set the mode of the new $dest"
  mv -f "$new" "$dest" || fail "cannot put the new $dest in place"
}

# Run the service $1 with its config changed ($2 = 1) or not: enabled and started where systemd
# runs, reloaded only after a change; detached with a pid file elsewhere (containers).
run_service() {
  local unit=$1 changed=$2 was_active=0
  if [ -d /run/systemd/system ]; then
    systemctl is-active --quiet "$unit" && was_active=1
    systemctl enable --now --quiet "$unit"
    if [ "$was_active" = 1 ] && [ "$changed" = 1 ]; then
      systemctl reload "$unit"
      echo "$unit: config changed, reloaded"
    elif [ "$was_active" = 1 ]; then
      echo "$unit: running, config unchanged"
    else
      echo "$unit: started"
    fi
    sleep 1
    systemctl is-active --quiet "$unit" && return 0
    journalctl -u "$unit" -n 20 --no-pager || true
    fail "$unit is not running"
  fi
  local pidfile=/run/kswizard-$unit.pid pid=""
  [ -s "$pidfile" ] && pid=$(cat "$pidfile")
  if [ -n "$pid" ] && grep -qa "$unit" "/proc/$pid/cmdline" 2>/dev/null; then
    if [ "$changed" = 0 ]; then
      echo "$unit: running (pid $pid), config unchanged"
      return 0
    fi
    case $unit in
      haproxy) haproxy -D -p "$pidfile" -f "$haproxy_cfg" -sf "$pid" ;;
      keepalived) kill -HUP "$pid" ;;
    esac
    echo "$unit: config changed, reloaded"
  else
    case $unit in
      haproxy) haproxy -D -p "$pidfile" -f "$haproxy_cfg" ;;
      keepalived) keepalived -f "$keepalived_dir/keepalived.conf" -p "$pidfile" ;;
    esac
    echo "$unit: started (no systemd here: detached, pid file $pidfile)"
  fi
}

ensure_package haproxy haproxy
ensure_package keepalived keepalived

mkdir -p "$(dirname "$haproxy_cfg")" "$keepalived_dir"
new=$(mktemp "$haproxy_cfg.XXXXXX")
render_haproxy >"$new"
haproxy -c -q -f "$new" || { rm -f "$new"; fail "haproxy -c refused the new config (above); the old one is kept"; }
changed=0
replace "$haproxy_cfg" "$new" 644 && changed=1
run_service haproxy "$changed"

stage=$(mktemp -d)
render_keepalived "$keepalived_dir" "$iface" >"$stage/keepalived.conf"
render_check >"$stage/$check_name"
changed=0
replace "$keepalived_dir/$check_name" "$stage/$check_name" 755 && changed=1
keepalived --config-test -f "$stage/keepalived.conf" ||
  { rm -rf "$stage"; fail "keepalived --config-test refused the new config (above); the old one is kept"; }
replace "$keepalived_dir/keepalived.conf" "$stage/keepalived.conf" 644 && changed=1
rm -rf "$stage"
run_service keepalived "$changed"
echo "built-in load balancer ready: haproxy on :$KSW_LB_PORT, keepalived for $KSW_LB_ADDRESS"
[ "${KSW_CONSOLE_LB:-0}" = 1 ] && echo "console listener: http://$KSW_LB_ADDRESS:30880, every node's :30880 behind it"
true
