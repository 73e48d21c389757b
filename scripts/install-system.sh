#!/usr/bin/env bash
# What the real-server tests, the browser tests and the demo need from Debian: Chromium (driven
# by Playwright with executable_path) and the node configurable-http-proxy that JupyterHub runs
# in front of its users' servers.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
[ -e /usr/share/nodejs/configurable-http-proxy ] || need+=(node-configurable-http-proxy)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$sudo" ] && ! sudo -n true 2>/dev/null; }; then
    echo "install-system.sh: the tests and the demo need Debian's ${need[*]}; install them (apt-get install ${need[*]}) and run again" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# No recommends: the proxy would bring Debian's nodejs where another one is installed.
$sudo apt-get install -y -q --no-install-recommends "${need[@]}"
