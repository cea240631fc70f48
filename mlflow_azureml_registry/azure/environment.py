"""HTTP settings from the environment (proxies, CA bundle), read once per client instead of per request.

By default requests (under azure-core) reads them on every request: it walks the whole environment for
``*_PROXY`` variables and looks for ``~/.netrc``. Over thousands of small blob requests on parallel
threads that was a sixth of the client's CPU. Worse, walking ``os.environ`` while another thread
changes it raises ``KeyError`` (MLflow 3's telemetry thread sets and unsets a variable), which failed
a registration under concurrency. Both clients (control plane and blobs) therefore get these settings
once, when they are built, with requests' own rules: proxies from ``*_PROXY`` with ``NO_PROXY``
applied, the CA bundle from ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``. Only a ``~/.netrc`` login is
no longer sent (Azure requests carry their own token, SAS or key).
"""

from __future__ import annotations

import os
from typing import Any

_ATTEMPTS = 5


def environment_http_settings(url: str) -> dict[str, Any]:
    """azure-core keyword arguments for a client of ``url``: ``use_env_settings=False`` plus what requests
    would have read from the environment (``connection_verify``, ``proxies``)."""
    from requests.utils import get_environ_proxies

    for attempt in range(_ATTEMPTS):
        try:
            proxies = get_environ_proxies(url) or None
            break
        except (KeyError, RuntimeError):  # another thread changed os.environ while it was being walked
            if attempt == _ATTEMPTS - 1:
                raise
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return {"use_env_settings": False, "connection_verify": verify, "proxies": proxies}
