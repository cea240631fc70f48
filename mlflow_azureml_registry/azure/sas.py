"""A datastore SAS that renews itself before it expires, so long transfers and long-lived processes go on.

azure-storage-blob reads ``AzureSasCredential.signature`` for every request (block, range, listing
page), so a credential whose ``signature`` fetches a fresh SAS shortly before the current one's
``se=`` expiry keeps one client valid indefinitely, mid-transfer included.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Callable, Optional
from urllib.parse import parse_qs

from azure.core.credentials import AzureSasCredential

_logger = logging.getLogger(__name__)

MAX_MARGIN_S = 300.0
"""Renew at most this long before expiry (real SAS tokens live an hour)."""
MARGIN_SHARE = 0.25
"""...and at least this share of the token's lifetime before it, so short-lived tokens renew in time too."""


def sas_expiry(token: str) -> Optional[float]:
    """The ``se=`` expiry of a SAS as a Unix time, or None when it has none or it cannot be read."""
    values = parse_qs(token.lstrip("?")).get("se")
    if not values:
        return None
    try:
        return dt.datetime.fromisoformat(values[0].replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class RenewingSasCredential(AzureSasCredential):
    """``AzureSasCredential`` that calls ``fetch`` for a new SAS when the current one nears expiry."""

    def __init__(self, token: str, fetch: Callable[[], str], *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(token.lstrip("?"))
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._renew_at = self._renewal_time(token)

    def _renewal_time(self, token: str) -> Optional[float]:
        expiry = sas_expiry(token)
        if expiry is None:
            return None
        lifetime = max(0.0, expiry - self._clock())
        return expiry - min(MAX_MARGIN_S, max(1.0, lifetime * MARGIN_SHARE))

    @property
    def signature(self) -> str:  # read by azure-core's AzureSasCredentialPolicy for each request
        if self._renew_at is not None and self._clock() >= self._renew_at:
            with self._lock:
                if self._renew_at is not None and self._clock() >= self._renew_at:
                    self.renew()
        return self._signature

    def renew(self) -> None:
        """Fetch a new SAS now (callers hold no lock; concurrent renewals are harmless)."""
        token = self._fetch().lstrip("?")
        _logger.info("Renewed the datastore SAS (the previous one was about to expire)")
        self.update(token)
        self._renew_at = self._renewal_time(token)

    def __repr__(self) -> str:  # never show the signature
        return "RenewingSasCredential(<redacted>)"
