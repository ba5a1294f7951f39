"""Optional API key for the prediction endpoints.

Clients send it as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
The comparison is constant-time, so response timing reveals nothing about how
much of a guess was right. Probes (/health) and scrapers (/metrics) stay open.
"""
import hmac

from service.errors import ApiError


def presented_key(headers):
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("X-API-Key", "")


def require_api_key(expected, headers):
    """Raise 401 unless ``expected`` is empty or the request presents it."""
    if not expected:
        return
    given = presented_key(headers)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "missing or invalid API key" if given else "API key required",
                       {"WWW-Authenticate": 'Bearer realm="mnist-serving"'})
