#!/usr/bin/env bash
# Installs the Debian packages tpusim builds with, if any are missing. Does nothing when all
# are present. Run as root on Debian 12 (uses apt-get; no other downloads).
set -euo pipefail

packages=(
  g++ cmake make
  libfmt-dev libyaml-cpp-dev catch2 libcli11-dev nlohmann-json3-dev
  libbenchmark-dev
  # scripts/fuzz.sh: libFuzzer, the sanitizer runtimes and llvm-symbolizer. Clang 16: the
  # sources capture structured bindings in lambdas, which clang 14 cannot compile.
  clang-16 libclang-rt-16-dev llvm-16
  # The HTML report's tests open it in a headless browser.
  chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing packages (${missing[*]}) and not running as root; install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
