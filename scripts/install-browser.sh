#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Install the headless browser that tests/integration/test_report_browser.py drives: Debian's
# chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver), plus fonts so the report
# renders with real glyphs. Does nothing when the browser is there; installs it with apt-get when
# running as root (as CI does), else says what to run and fails.
set -euo pipefail
PACKAGES=(chromium chromium-driver fonts-liberation fonts-dejavu-core)

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium or chromedriver is missing; as root on Debian, run: apt-get install -y ${PACKAGES[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh CI image may have no package lists yet: update only when installing as is fails.
apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
    || { apt-get update -q && apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; }
chromium --version
chromedriver --version
