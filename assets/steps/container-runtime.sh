#!/bin/bash
# Container runtime: containerd with its default config, checked through the CRI with crictl.
set -euo pipefail
for t in containerd crictl; do
  command -v "$t" >/dev/null || { echo "FAIL  $t missing: install containerd and cri-tools"; exit 1; }
done
echo "containerd: $(containerd --version)"
if [ -s /etc/containerd/config.toml ]; then
  echo "/etc/containerd/config.toml exists, kept"
else
  mkdir -p /etc/containerd
  containerd config default >/etc/containerd/config.toml
  echo "wrote /etc/containerd/config.toml"
fi
if crictl info | grep -q '"RuntimeReady"'; then echo "runtime ready"
else echo "FAIL  crictl info does not report the runtime ready"; exit 1; fi
