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
