#!/bin/sh
# Installs the system programs the test-suite starts itself (real broker, Prometheus server and
# promtool, amtool, OpenSSH client, headless Chromium for the dev dashboard's screenshot test).
# Only as root and only when something is missing; otherwise it says what it would need.
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto mosquitto-clients"
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
    || missing="$missing prometheus"
command -v amtool >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v ssh >/dev/null 2>&1 || missing="$missing openssh-client"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || true
    # --no-install-recommends keeps prometheus from pulling exporters and their services.
    apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 \
        || echo "warning: could not install:$missing (tests that need them will be skipped)"
    # Debian starts installed daemons; the tests start their own on free ports.
    for svc in mosquitto prometheus prometheus-alertmanager; do
        (command -v service >/dev/null 2>&1 && service "$svc" stop >/dev/null 2>&1) || true
    done
else
    echo "note: not root; missing system packages:$missing (tests that need them will be skipped)"
fi
exit 0
