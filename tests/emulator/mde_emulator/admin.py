"""Admin endpoints under /_emulator/ (no auth; not counted in the API or token stats)."""

from .faults import FAULT_KEYS


def _configure(emulator, payload):
    if not isinstance(payload, dict):
        raise ValueError(f"config must be a JSON object of fault keys: {', '.join(FAULT_KEYS)}")
    return emulator.configure(**payload)


def _reset(emulator, _payload):
    emulator.reset()
    return {"reset": True}


def _revoke(emulator, _payload):
    emulator.revoke_tokens()
    return {"revoked": True}


def _export_truth(emulator, payload):
    return emulator.export_truth(payload.get("device_ids"))


def _delta_truth(emulator, payload):
    if "since" not in payload:
        raise ValueError('delta-truth needs {"since": "<ISO 8601>", "device_ids"?: [...]}')
    return emulator.delta_truth(payload["since"], payload.get("device_ids"))


def _delta_changes(emulator, payload):
    if not isinstance(payload, dict) or "changes" not in payload:
        raise ValueError('delta-changes needs {"changes": [{"device_id", "kb", "status": "New"|"Fixed", '
                         '"rbac_move"?: false, "at"?: "<ISO 8601>"}, ...]}')
    return {"changes": emulator.add_delta_changes(payload["changes"])}


ADMIN_ROUTES = {
    ("GET", "/_emulator/stats"): lambda emulator, _payload: emulator.stats(),
    ("GET", "/_emulator/config"): lambda emulator, _payload: emulator.faults(),
    ("POST", "/_emulator/config"): _configure,
    ("POST", "/_emulator/reset"): _reset,
    ("POST", "/_emulator/revoke"): _revoke,
    ("POST", "/_emulator/token"): lambda emulator, payload: emulator.issue_token(**payload),
    ("POST", "/_emulator/federated-token"): lambda emulator, payload: {
        "token": emulator.mint_federated_token(**payload)},
    ("GET", "/_emulator/data"): lambda emulator, _payload: emulator.data,
    ("GET", "/_emulator/info"): lambda emulator, _payload: emulator.info,
    ("GET", "/_emulator/export"): lambda emulator, _payload: emulator.export_summary(),
    ("POST", "/_emulator/export"): lambda emulator, _payload: emulator.prepare_export(),
    ("POST", "/_emulator/export-truth"): _export_truth,
    ("POST", "/_emulator/delta-truth"): _delta_truth,
    ("GET", "/_emulator/delta-changes"): lambda emulator, _payload: {"changes": emulator.delta_changes()},
    ("POST", "/_emulator/delta-changes"): _delta_changes,
}


def handle(emulator, method, path, payload):
    """Return (status, body) for an admin request."""
    action = ADMIN_ROUTES.get((method, path.rstrip("/")))
    if action is None:
        return 404, {"error": f"unknown admin endpoint {method} {path}",
                     "endpoints": [f"{m} {p}" for m, p in ADMIN_ROUTES]}
    try:
        return 200, action(emulator, payload)
    except (ValueError, TypeError, KeyError) as exc:
        return 400, {"error": str(exc)}
