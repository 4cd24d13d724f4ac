#!/usr/bin/env bash
# Makes sure this machine has a Vulkan adapter wgpu can use. When there is none, installs Mesa's
# software Vulkan driver (lavapipe, Debian/Ubuntu package mesa-vulkan-drivers), which runs every
# kernel on the CPU. Needs root or sudo for the install; does nothing when a driver is present.
set -euo pipefail

have_vulkan() {
  # The loader and at least one installable client driver (ICD) manifest.
  local libs
  libs=$(ldconfig -p 2>/dev/null || true)
  case "$libs" in *libvulkan.so.1*) ;; *) return 1 ;; esac
  [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && return 0
  local f
  for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json; do
    [ -e "$f" ] && return 0
  done
  return 1
}

if have_vulkan; then
  echo "setup: Vulkan driver present"
  exit 0
fi

echo "setup: no Vulkan driver found; installing Mesa's software Vulkan driver (mesa-vulkan-drivers)"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: need root to run: apt-get install -y mesa-vulkan-drivers" >&2; exit 1
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "setup: no apt-get; install a Vulkan driver for your GPU or Mesa's lavapipe by hand" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers >/dev/null
have_vulkan || { echo "setup: installed mesa-vulkan-drivers but still no Vulkan driver" >&2; exit 1; }
echo "setup: installed lavapipe"
