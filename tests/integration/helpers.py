# -*- coding: utf-8 -*-
# Copyright (c) defender.tvm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the emulator's own data says the collection must return, test inventories named after its
devices, and a CONNECT proxy."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import select
import socket
import threading

from ansible_collections.defender.tvm.tests.integration.harness import UNREACHABLE_WINDOWS


def expected_records(raw_kbs):
    """The emulator's PublicProductFixDto list as the collection must return it for one ID."""
    records = [{'id': kb['id'], 'kb': 'KB' + kb['id'], 'name': kb['name'], 'products_names': kb['productsNames'],
                'url': kb['url'], 'machine_missed_on': kb['machineMissedOn'], 'cve_addressed': kb['cveAddressed']}
               for kb in raw_kbs]
    return sorted(records, key=lambda k: (-k['cve_addressed'], -k['machine_missed_on'], k['id']))


def synthetic_software(emulator):
    """The software IDs the emulator synthesised (extra_software), which end in a 5-digit number."""
    return sorted(i for i in emulator.data['software'] if re.search(r'_\d{5}$', i))


def kb_ids(records):
    return sorted(r['id'] for r in records)


def machines_by_name(emulator):
    """computer name -> device, for the devices that have a name (of two with one name, the last)."""
    return dict((m['computerDnsName'], m) for m in emulator.data['machines'].values() if m['computerDnsName'])


def inventory(emulator, count, style='short'):
    """Windows hosts named after Defender devices (short or FQDN), plus one Defender does not know;
    all UNREACHABLE_WINDOWS (name -> host vars, for ``run_collection_playbook``)."""
    names = sorted(n for n in machines_by_name(emulator) if n.endswith('.contoso.local'))[:count]
    hosts = dict(((n.split('.')[0] if style == 'short' else n.upper()), dict(UNREACHABLE_WINDOWS)) for n in names)
    hosts['brand-new-host'] = dict(UNREACHABLE_WINDOWS)
    return hosts


class ConnectProxy:
    """A minimal HTTPS (CONNECT) proxy on loopback that records the tunnels it opened."""

    def __init__(self):
        self.tunnels = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(('127.0.0.1', 0))
        self._server.listen(16)
        self.url = 'http://127.0.0.1:%d' % self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                client, dummy = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client):
        try:
            request = b''
            while b'\r\n\r\n' not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            method, target = request.split(b' ')[:2]
            if method != b'CONNECT':
                client.sendall(b'HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n')
                return
            host, port = target.decode().rsplit(':', 1)
            self.tunnels.append(target.decode())
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b'HTTP/1.1 200 Connection established\r\n\r\n')
            sockets = [client, upstream]
            while True:
                readable, dummy, dummy2 = select.select(sockets, [], [], 30)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()

    def close(self):
        self._server.close()
