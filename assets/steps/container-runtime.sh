#!/bin/bash
# Container runtime: containerd, runc and crictl, delivered by the bundle (KSW_DELIVERY=bundle) or
# installed from the package repositories (KSW_DELIVERY=packages: the distribution's containerd, or
# Docker's on RHEL-likes, and cri-tools from pkgs.k8s.io, whose repository this step sets up for
# kube-packages too); containerd's config with the systemd cgroup driver (the kubelet's, as kubeadm
# sets it); containerd.service enabled and started; the runtime checked through the CRI with crictl.
set -euo pipefail
fail() { echo "FAIL  $*"; exit 1; }
case "${KSW_DELIVERY:-}" in bundle | packages) ;; *) fail "KSW_DELIVERY is '${KSW_DELIVERY:-}', expected bundle or packages (kswizard sets it)" ;; esac
[[ "${KSW_K8S_VERSION:-}" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || fail "KSW_K8S_VERSION is '${KSW_K8S_VERSION:-}', expected vMAJOR.MINOR.PATCH"
# kubeadm hosts run containerd and the kubelet as systemd services, with the systemd cgroup driver:
# without systemd there is nothing to run them the way kubeadm expects, so say so and stop.
[ -d /run/systemd/system ] || fail "this node does not run systemd (PID 1 is $(cat /proc/1/comm)): kswizard runs containerd and the kubelet as systemd services, as kubeadm expects"
repo="https://pkgs.k8s.io/core:/stable:/v${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

# Write stdin to $1 unless it holds that already; true when the file changed.
put() {
  local new
  new=$(cat)
  [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return 1
  mkdir -p "$(dirname "$1")"
  printf '%s\n' "$new" >"$1.kswizard-new" && mv "$1.kswizard-new" "$1"
}

# ID and ID_LIKE from /etc/os-release.
# shellcheck source=/dev/null
os_ids() { (. /etc/os-release && echo "${ID:-}${ID_LIKE:+ $ID_LIKE}"); }

# The family from them: ID first, then ID_LIKE in its order.
family() {
  local id
  for id in $(os_ids); do
    case "$id" in
      debian | ubuntu) echo debian; return ;;
      fedora) echo fedora; return ;;
      rhel | centos | rocky | almalinux | ol) echo rhel; return ;;
    esac
  done
}

no_packages() {
  fail "cannot install from package repositories here: $1. Configure a bundle instead (\`kswizard bundle fetch\` on a machine with network, then \`bundle: DIR\` in conf/kswizard.yaml)"
}

# apt: the distribution's containerd (runc comes with it), cri-tools from pkgs.k8s.io.
install_apt() {
  export DEBIAN_FRONTEND=noninteractive
  local keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg proxy=""
  if [ ! -s "$keyring" ]; then
    # The key comes the way the packages will: through the proxy apt would use for pkgs.k8s.io
    # (its own for that host, else https's, else http's, which https falls back to), if any.
    for key in Acquire::https::Proxy::pkgs.k8s.io Acquire::https::Proxy Acquire::http::Proxy::pkgs.k8s.io Acquire::http::Proxy; do
      eval "$(apt-config shell proxy "$key")"
      [ -z "$proxy" ] || break
    done
    [ "$proxy" != DIRECT ] || proxy=""
    if ! command -v curl >/dev/null || ! command -v gpg >/dev/null; then
      { apt-get update && apt-get install -y ca-certificates curl gpg; } || no_packages "apt-get could not install curl and gpg (no network?)"
    fi
    mkdir -p /etc/apt/keyrings
    echo "fetching the signing key of $repo/deb/${proxy:+ through the proxy apt uses, $proxy}"
    curl -fsSL ${proxy:+--proxy "$proxy"} "$repo/deb/Release.key" | gpg --batch --yes --dearmor -o "$keyring" || {
      rm -f "$keyring" # not a half-written key that the next run would take as fetched
      no_packages "the repository key $repo/deb/Release.key could not be fetched (no network, or apt's proxy does not answer?)"
    }
  fi
  put /etc/apt/sources.list.d/kubernetes.list <<<"deb [signed-by=$keyring] $repo/deb/ /" || true
  apt-get update || no_packages "apt-get update failed (no network to $repo and the distribution's mirrors?)"
  apt-get install -y containerd cri-tools || fail "apt-get install containerd cri-tools failed (output above)"
  echo "containerd: the distribution's package; cri-tools from $repo/deb/"
}

# dnf/yum: containerd.io from Docker's repository on RHEL-likes (they ship none), the distribution's
# containerd on Fedora; cri-tools from pkgs.k8s.io. dnf fetches the keys (gpgkey=) itself, through
# its own proxy settings: nothing is fetched here.
install_rpm() {
  local pm=$1 pkg=containerd
  put /etc/yum.repos.d/kubernetes.repo <<EOF || true
[kubernetes]
name=Kubernetes
baseurl=$repo/rpm/
enabled=1
gpgcheck=1
gpgkey=$repo/rpm/repodata/repomd.xml.key
exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni
EOF
  if [ "$2" = rhel ]; then
    pkg=containerd.io
    put /etc/yum.repos.d/docker-ce.repo <<'EOF' || true
[docker-ce-stable]
name=Docker CE Stable - $basearch
baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable
enabled=1
gpgcheck=1
gpgkey=https://download.docker.com/linux/centos/gpg
EOF
  fi
  "$pm" install -y "$pkg" cri-tools --disableexcludes=kubernetes ||
    no_packages "$pm install $pkg cri-tools failed (no network to $repo?)"
  if [ "$pkg" = containerd.io ]; then echo "containerd: containerd.io from Docker's repository; cri-tools from $repo/rpm/"
  else echo "containerd: the distribution's package; cri-tools from $repo/rpm/"; fi
}

if [ "$KSW_DELIVERY" = bundle ]; then
  for f in /usr/local/bin/containerd /usr/local/sbin/runc /usr/local/bin/crictl; do
    [ -x "$f" ] || fail "$f missing: the bundle's deliver step puts it there (is \`bundle:\` in conf/kswizard.yaml the bundle you meant?)"
  done
else
  [ -f /etc/os-release ] || no_packages "no /etc/os-release to tell the distribution"
  fam=$(family)
  case "$fam" in
    debian) command -v apt-get >/dev/null || no_packages "a Debian-like node without apt-get"
      install_apt ;;
    rhel | fedora)
      pm=$(command -v dnf || command -v yum) || no_packages "a RHEL-like node with neither dnf nor yum"
      install_rpm "$(basename "$pm")" "$fam" ;;
    *) no_packages "the distribution ($(os_ids)) is neither Debian-like (apt) nor RHEL-like (dnf/yum)" ;;
  esac
  for t in containerd runc crictl; do
    command -v "$t" >/dev/null || fail "$t missing after the packages were installed"
  done
fi
echo "containerd: $(containerd --version)"

# The config: containerd's default unless one is there, with runc's cgroup driver the kubelet's.
# Docker's containerd.io ships a config that disables the CRI plugin: no use to the kubelet, replaced.
cfg=/etc/containerd/config.toml
changed=0
if [ ! -s "$cfg" ] || grep -Eq '^\s*disabled_plugins\s*=.*"cri"' "$cfg"; then
  [ -s "$cfg" ] && cp "$cfg" "$cfg.kswizard-old" && echo "$cfg disabled the CRI plugin: replaced by the default (the old one is $cfg.kswizard-old)"
  default=$(containerd config default) || fail "containerd config default failed (output above)"
  put "$cfg" <<<"$default" && changed=1 && echo "wrote $cfg (containerd config default)"
else
  echo "$cfg exists, kept"
fi
if grep -Eq '^\s*SystemdCgroup\s*=\s*false' "$cfg"; then
  sed -i -E 's/^(\s*)SystemdCgroup\s*=\s*false/\1SystemdCgroup = true/' "$cfg" && changed=1
  echo "$cfg: SystemdCgroup = true (systemd runs this node, and the kubelet's cgroup driver is systemd)"
fi
grep -Eq '^\s*SystemdCgroup\s*=\s*true' "$cfg" ||
  fail "$cfg sets no SystemdCgroup for runc: add SystemdCgroup = true to runc's options, or remove the file so that kswizard writes containerd's default"

# The unit: upstream's containerd.service for the bundle's binary; packages bring their own.
if [ "$KSW_DELIVERY" = bundle ]; then
  if put /etc/systemd/system/containerd.service <<'EOF'; then
# containerd.service as containerd's repository ships it (containerd/containerd.service), for
# /usr/local/bin/containerd. Written by kswizard.
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd

Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5

# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNPROC=infinity
LimitCORE=infinity

# Comment TasksMax if your systemd version does not supports it.
# Only systemd 226 and above support this version.
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
EOF
    changed=1
    echo "wrote /etc/systemd/system/containerd.service"
  fi
  echo "containerd: systemd unit containerd.service (bundle: the unit written by kswizard)"
fi
systemctl daemon-reload
if [ "$KSW_DELIVERY" = packages ]; then
  systemctl cat containerd.service >/dev/null 2>&1 || fail "the containerd package brought no containerd.service"
  echo "containerd: systemd unit containerd.service (packages: the package's own unit)"
fi
if [ "$changed" = 1 ] && systemctl is-active --quiet containerd.service; then
  systemctl restart containerd.service
fi
systemctl enable --now containerd.service
if ! systemctl is-active --quiet containerd.service; then
  echo "FAIL  containerd.service is not active:"
  journalctl -u containerd.service -n 20 --no-pager
  exit 1
fi
echo "containerd.service: $(systemctl is-enabled containerd.service), $(systemctl is-active containerd.service)"

put /etc/crictl.yaml <<'EOF' && echo "wrote /etc/crictl.yaml"
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
EOF
# The CRI answers once containerd is up (Type=notify: it is, but give a restarted one a moment).
for _ in 1 2 3 4 5; do
  info=$(crictl info 2>&1 | tr -d ' \n') && break
  sleep 1
done
case "$info" in
  *'"type":"RuntimeReady","status":true'*) echo "runtime ready (crictl info)" ;;
  *) fail "crictl info does not report the runtime ready: $info" ;;
esac
case "$info" in
  *'"SystemdCgroup":true'*) echo "runtime uses the systemd cgroup driver (crictl info)" ;;
  *) fail "crictl info does not show SystemdCgroup true for runc: containerd did not take $cfg" ;;
esac
