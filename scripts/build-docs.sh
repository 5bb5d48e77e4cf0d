#!/usr/bin/env bash
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Build the collection's docs site with antsibull-docs, offline: the plugin, module, filter and
# role docs plus the guides in docs/docsite/. Lints them first (antsibull-docs
# lint-collection-docs --plugin-docs, which CI runs too) and fails on any error or Sphinx warning.
#   scripts/build-docs.sh [BUILD_DIR]      (default: .work/docs-site)
# Prints the path of the site's index.html. Needs the venv of scripts/setup.sh (run here when
# missing); packages come from the registry only the first time, the build itself is offline.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${DEFENDER_TVM_VENV:-$ROOT/.venv}"
DEST="${1:-$ROOT/.work/docs-site}"
ANTSIBULL_DOCS="antsibull-docs>=2.28,<3"
STARTED=$SECONDS

# The build directory is (re)generated: refuse to write into an unrelated, non-empty one.
if [ -d "$DEST" ] && [ -n "$(ls -A "$DEST")" ] && [ ! -f "$DEST/conf.py" ]; then
    echo "error: $DEST is not empty and holds no earlier docs build; give an empty or new directory" >&2
    exit 1
fi
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"

WINDOWS_COLLECTIONS="$ROOT/.work/ansible_windows"
if [ ! -x "$VENV/bin/ansible-doc" ] || [ ! -f "$WINDOWS_COLLECTIONS/ansible_collections/ansible/windows/MANIFEST.json" ]; then
    echo "== scripts/setup.sh (no venv or no ansible.windows yet)"
    "$ROOT/scripts/setup.sh"
fi

# Install into the venv only what is missing: from what is there (--no-index) when possible.
pip_install() {
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$@" >/dev/null 2>&1 \
        || "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}
pip_install "$ANTSIBULL_DOCS"
export PATH="$VENV/bin:$PATH"   # antsibull-docs runs ansible-doc and sphinx-build from PATH

# The build documents the collection as installed: under .../ansible_collections/defender/tvm,
# with the real ansible.windows beside it (a dependency; the docs reference win_updates).
COLLECTIONS="$ROOT/.work/collections"
"$VENV/bin/python" "$ROOT/scripts/layout.py" "$COLLECTIONS" >/dev/null
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS:$WINDOWS_COLLECTIONS"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false   # never document another installed copy
export ANSIBLE_NOCOLOR=1

# Lint the repository itself, not the mirror: the linter copies the files Git does not ignore,
# and the mirror lies in the ignored .work/, where that is nothing (and nothing would be linted).
echo "== antsibull-docs lint-collection-docs --plugin-docs"
(cd "$ROOT" && antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .)

echo "== antsibull-docs sphinx-init into $DEST"
chmod go-w "$DEST"   # antsibull-docs wants a directory only its owner can write
rm -rf "$DEST/build"
antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir "$DEST" \
    --project defender.tvm --copyright "defender.tvm contributors" \
    --title "defender.tvm: Microsoft Defender for Endpoint vulnerability management" \
    --html-short-title defender.tvm defender.tvm >/dev/null
pip_install -r "$DEST/requirements.txt"

# Offline: no intersphinx inventories to download, and the references into the Ansible docs
# that only those inventories resolve (common_return_values, ...; the environment variables of
# ansible-core's inventory_cache options, ANSIBLE_CACHE_PLUGIN...) are not errors.
cat >> "$DEST/conf.py" <<'EOF'

# Added by scripts/build-docs.sh for an offline build.
intersphinx_mapping = {}
suppress_warnings = ['ref.ref', 'ref.envvar']
EOF

echo "== build (Sphinx warnings are errors)"
"$DEST/build.sh"

echo "Built in $((SECONDS - STARTED)) s. Open:"
echo "$DEST/build/html/index.html"
