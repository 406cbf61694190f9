#!/bin/bash
# Kubernetes packages: kubeadm, kubelet and kubectl of KSW_K8S_VERSION, delivered by the bundle or
# installed from pkgs.k8s.io (the repository container-runtime set up), pinned and held; the
# kubelet's systemd unit with kubeadm's drop-in, enabled. As on any kubeadm host, the kubelet
# restarts every few seconds until kubeadm init/join writes its config.
set -euo pipefail
fail() { echo "FAIL  $*"; exit 1; }
case "${KSW_DELIVERY:-}" in bundle | packages) ;; *) fail "KSW_DELIVERY is '${KSW_DELIVERY:-}', expected bundle or packages (kswizard sets it)" ;; esac
[[ "${KSW_K8S_VERSION:-}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "KSW_K8S_VERSION is '${KSW_K8S_VERSION:-}', expected vMAJOR.MINOR.PATCH"
[ -d /run/systemd/system ] || fail "this node does not run systemd (PID 1 is $(cat /proc/1/comm)): kubeadm runs the kubelet as a systemd service"
ver=${KSW_K8S_VERSION#v}

if [ "$KSW_DELIVERY" = bundle ]; then
  for t in kubeadm kubelet kubectl; do
    [ -x "/usr/local/bin/$t" ] || fail "/usr/local/bin/$t missing: the bundle's deliver step puts it there (is \`bundle:\` in conf/kswizard.yaml the bundle you meant?)"
  done
elif [ -s /etc/apt/sources.list.d/kubernetes.list ]; then
  # Pinned to the release, then held: an unattended upgrade must not move a cluster's version.
  DEBIAN_FRONTEND=noninteractive apt-get install -y "kubelet=$ver-*" "kubeadm=$ver-*" "kubectl=$ver-*" ||
    fail "apt-get install of kubelet, kubeadm and kubectl $ver failed (output above; a held other version is changed only on purpose: apt-mark unhold first)"
  apt-mark hold kubelet kubeadm kubectl
  echo "kubelet, kubeadm, kubectl $ver from pkgs.k8s.io (apt), held"
elif [ -s /etc/yum.repos.d/kubernetes.repo ]; then
  # The repository excludes these packages (upstream's exclude= line): only an install that lifts
  # the exclusion on purpose changes them, which holds them at this version.
  pm=$(basename "$(command -v dnf || command -v yum)")
  "$pm" install -y "kubelet-$ver" "kubeadm-$ver" "kubectl-$ver" --disableexcludes=kubernetes ||
    fail "$pm install of kubelet, kubeadm and kubectl $ver failed (output above)"
  echo "kubelet, kubeadm, kubectl $ver from pkgs.k8s.io ($pm), held by the repository's exclude="
else
  fail "no Kubernetes package repository on this node: container-runtime sets it up with KSW_DELIVERY=packages; run it first"
fi
for t in kubeadm kubelet kubectl; do
  command -v "$t" >/dev/null || fail "$t missing after the install"
done
echo "kubeadm: $(kubeadm version)"
echo "kubelet: $(kubelet --version)"
echo "kubectl: $(kubectl version --client)"
[[ "$(kubelet --version)" =~ v${ver//./\\.}([^0-9.]|$) ]] || fail "the kubelet is not $KSW_K8S_VERSION, the release this install is for"

# The unit and kubeadm's drop-in as upstream ships them (kubernetes/release), for the bundle's
# /usr/local/bin/kubelet; packages bring their own.
changed=0
if [ "$KSW_DELIVERY" = bundle ]; then
  unit=/etc/systemd/system/kubelet.service
  dropin=/etc/systemd/system/kubelet.service.d/10-kubeadm.conf
  mkdir -p "${dropin%/*}"
  new=$(cat <<'EOF'
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
EOF
)
  if [ ! -f "$unit" ] || [ "$(cat "$unit")" != "$new" ]; then printf '%s\n' "$new" >"$unit"; changed=1; echo "wrote $unit"; fi
  new=$(cat <<'EOF'
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
# This is a file that "kubeadm init" and "kubeadm join" generates at runtime, populating the KUBELET_KUBEADM_ARGS variable dynamically
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
# This is a file that the user can use for overrides of the kubelet args as a last resort. Preferably, the user should use
# the .NodeRegistration.KubeletExtraArgs object in the configuration files instead. KUBELET_EXTRA_ARGS should be sourced from this file.
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
EOF
)
  if [ ! -f "$dropin" ] || [ "$(cat "$dropin")" != "$new" ]; then printf '%s\n' "$new" >"$dropin"; changed=1; echo "wrote $dropin"; fi
  echo "kubelet: systemd unit kubelet.service with kubeadm's drop-in (bundle: written by kswizard)"
fi
systemctl daemon-reload
if [ "$KSW_DELIVERY" = packages ]; then
  [[ "$(systemctl cat kubelet.service 2>/dev/null)" == *--config=/var/lib/kubelet/config.yaml* ]] ||
    fail "the kubelet packages brought no kubelet.service with kubeadm's drop-in (10-kubeadm.conf)"
  echo "kubelet: systemd unit kubelet.service with kubeadm's drop-in (packages: their own)"
fi
systemctl enable --now kubelet.service
systemctl is-enabled --quiet kubelet.service || fail "kubelet.service is not enabled: $(systemctl is-enabled kubelet.service)"
if [ ! -s /var/lib/kubelet/config.yaml ]; then
  echo "kubelet.service: enabled; it restarts every 10 s until kubeadm init/join writes /var/lib/kubelet/config.yaml, as on any kubeadm host (now: $(systemctl is-active kubelet.service))"
  exit 0
fi
# Joined already (a re-run): the kubelet runs with its config, after a restart when its unit changed.
[ "$changed" = 0 ] || systemctl restart kubelet.service
for _ in $(seq 15); do
  systemctl is-active --quiet kubelet.service && break
  sleep 1
done
if ! systemctl is-active --quiet kubelet.service; then
  echo "FAIL  kubelet.service has its config but is not active:"
  journalctl -u kubelet.service -n 20 --no-pager
  exit 1
fi
echo "kubelet.service: enabled, active"
