# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mirror the working tree into DEST/ansible_collections/defender/tvm and print that path.

ansible-test and the collection loader need the collection under a path ending in
ansible_collections/<namespace>/<name>; the repository itself is the collection root, so the
scripts mirror it (the files git tracks plus untracked, non-ignored ones) instead of moving it.
Files removed from the tree are removed from the mirror; tests/output is kept (ansible-test's cache).
"""

import os
import shutil
import subprocess
import sys


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dest_root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, '.work', 'collections'))
    dest = os.path.join(dest_root, 'ansible_collections', 'defender', 'tvm')
    listing = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                             cwd=repo, check=True, stdout=subprocess.PIPE).stdout
    files = sorted(set(f for f in listing.decode('utf-8').split('\0') if f and os.path.isfile(os.path.join(repo, f))))
    for name in files:
        src, dst = os.path.join(repo, name), os.path.join(dest, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst) or os.stat(src).st_mtime_ns != os.stat(dst).st_mtime_ns:
            shutil.copy2(src, dst)
    wanted = set(files)
    for top, dirs, names in os.walk(dest, topdown=True):
        rel_top = os.path.relpath(top, dest)
        if rel_top == os.path.join('tests', 'output') or rel_top.startswith(os.path.join('tests', 'output') + os.sep):
            dirs[:] = []
            continue
        for name in names:
            rel = os.path.normpath(os.path.join(rel_top, name))
            if rel not in wanted:
                os.remove(os.path.join(top, name))
    print(dest)


if __name__ == '__main__':
    main()
