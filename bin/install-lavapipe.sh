#!/usr/bin/env bash
# Installs lavapipe (Mesa's software Vulkan driver) and the Vulkan loader from Debian's
# bookworm-backports, where Dawn (the WebGPU implementation the webgpu backend runs on) accepts
# them; Debian 12's own mesa 22.3 lacks features Dawn requires. For tests only: the software
# adapter is correct but slow, and auto backend selection never picks it.
# Adds a bookworm-backports source with the same mirror as the machine's Debian source. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]] && ldconfig -p | grep -q 'libvulkan.so.1 '; then
  exit 0
fi
uri=$(grep -h -m1 -oE '^URIs: *http[^ ]*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | sed -E 's/^URIs: *//')
if [[ -z $uri ]]; then
  uri=$(grep -h -m1 -oE '^deb +http[^ ]*/debian/? +bookworm ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1)
fi
uri=${uri:-http://deb.debian.org/debian}
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
    >/etc/apt/sources.list.d/sdd-backports.sources
fi
apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1
