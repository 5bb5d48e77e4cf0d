"""The export's record shapes: camelCase in the JSON pages and the delta, PascalCase in the files.

Sources (see SPEC.md): the JSON keys and their order, ``null`` for absent values, timestamps as
``yyyy-MM-dd HH:mm:ss`` and the record id ``{deviceId}_{softwareName}_{softwareVersion}_{cveId}_``
are those of Microsoft's examples (get-assessment-software-vulnerabilities); ``rbacGroupId`` and
``isOnboarded`` in the delta and the PascalCase file records (alphabetical keys, ``RbacGroupId``,
``IsOnboarded``, ``CveBatchTitle``/``CveBatchUrl``, keys with no value left out) are those of
elastic/integrations' fixtures. Which records leave out which keys is drawn per finding
(``Finding.shape``), so a reader meets ``null``, an absent key and ``[]`` for the same kind of value.
"""

import functools

from .findings import OLD_GROUP

KB_FORMS = (str, int, lambda kb: f"KB{kb}")   # how a record writes a KB number (Finding.kb_form)


@functools.lru_cache(maxsize=65536)
def _space(moment):
    return f"{moment:%Y-%m-%d %H:%M:%S}"


@functools.lru_cache(maxsize=65536)
def _space7(moment):
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond * 10:07d}"


def record_id(device, finding):
    """Microsoft's example form of a record id (treat it as opaque)."""
    software = finding.software
    return f"{device.id}_{software.name}_{software.version}_{finding.cve or ''}_"


def _update(finding, shape):
    """(recommendedSecurityUpdate, ...Id, ...Url) in camelCase terms; a missing key is left out."""
    if finding.kb is not None:
        return {"recommendedSecurityUpdate": finding.update,
                "recommendedSecurityUpdateId": KB_FORMS[finding.kb_form](finding.kb),
                "recommendedSecurityUpdateUrl": finding.update_url}
    if finding.update_id is not None:
        return {"recommendedSecurityUpdate": finding.update, "recommendedSecurityUpdateId": finding.update_id,
                "recommendedSecurityUpdateUrl": finding.update_url}
    if finding.update is not None:  # a vendor advisory, no KB: the id is null or left out
        result = {"recommendedSecurityUpdate": finding.update}
        if not shape & 1:
            result["recommendedSecurityUpdateId"] = None
        if not shape & 2:
            result["recommendedSecurityUpdateUrl"] = None
        return result
    if shape & 16:
        return {}
    return {"recommendedSecurityUpdate": None, "recommendedSecurityUpdateId": None,
            "recommendedSecurityUpdateUrl": None}


def camel(model, device, finding, event=None):
    """The JSON record (``event``: (eventTimestamp, status, old_group) for the delta)."""
    software, shape, cve = finding.software, finding.shape, finding.cve
    if cve is not None:
        score, severity, exploitability = model.cve_info(cve)
    else:
        score, severity, exploitability = None, None, "NoExploit"
    group, group_id = (OLD_GROUP if event is not None and event[2] else (device.group, device.group_id))
    record = {"id": record_id(device, finding), "deviceId": device.id, "rbacGroupName": group,
              "deviceName": device.name, "osPlatform": device.platform, "osVersion": device.os_version,
              "osArchitecture": "x64", "softwareVendor": software.vendor, "softwareName": software.name,
              "softwareVersion": software.version, "cveId": cve, "vulnerabilitySeverityLevel": severity}
    record.update(_update(finding, shape))
    if software.disk or not shape & 4:
        record["diskPaths"] = list(software.disk or [])
    if software.registry or not shape & 8:
        record["registryPaths"] = list(software.registry or [])
    record["lastSeenTimestamp"] = device.last_seen_space
    record["firstSeenTimestamp"] = _space(finding.first)
    record["exploitabilityLevel"] = exploitability
    record["recommendationReference"] = software.reference
    if cve is not None:
        record["securityUpdateAvailable"] = finding.available
        record["cvssScore"] = score
    if event is not None:
        record["rbacGroupId"] = group_id
        record["status"] = event[1]
        record["eventTimestamp"] = event[0]
        record["isOnboarded"] = True
    return record


def pascal(model, device, finding):
    """The file record: PascalCase, alphabetical, keys with no value left out."""
    software, shape, cve = finding.software, finding.shape, finding.cve
    record = {}
    if finding.batch is not None and not shape & 128:
        if finding.batch[0]:
            record["CveBatchTitle"] = finding.batch[0]
        record["CveBatchUrl"] = finding.batch[1]
    if cve is not None:
        score, severity, exploitability = model.cve_info(cve)
        record["CveId"] = cve
        record["CvssScore"] = score
    else:
        severity, exploitability = None, "NoExploit"
    record["DeviceId"] = device.id
    if device.name is not None:  # a device without a computerDnsName: the key is left out, as every absent value
        record["DeviceName"] = device.name
    if software.disk or not shape & 32:
        record["DiskPaths"] = list(software.disk or [])
    record["ExploitabilityLevel"] = exploitability
    record["FirstSeenTimestamp"] = _space7(finding.first)
    record["Id"] = record_id(device, finding)
    record["IsOnboarded"] = True
    record["LastSeenTimestamp"] = device.last_seen_space7
    record["OSArchitecture"] = "x64"
    record["OSPlatform"] = device.platform
    record["OSVersion"] = device.os_version
    record["RbacGroupId"] = device.group_id
    record["RbacGroupName"] = device.group
    record["RecommendationReference"] = software.reference
    for key, value in _update(finding, shape).items():
        if value is not None:
            record["R" + key[1:]] = value
    if software.registry or not shape & 64:
        record["RegistryPaths"] = list(software.registry or [])
    if cve is not None:
        record["SecurityUpdateAvailable"] = finding.available
    record["SoftwareName"] = software.name
    record["SoftwareVendor"] = software.vendor
    record["SoftwareVersion"] = software.version
    if severity is not None:
        record["VulnerabilitySeverityLevel"] = severity
    return record
