"""Qt's view of the machine's network, so a laptop back on Wi-Fi is back at work at once.

Why: after a drop the sync engine waits out its backoff (up to 30 s) and the phone engine
polls its routes every few seconds; the OS knows sooner. `QNetworkInformation` (GLib's
network monitor, NetworkManager or connman on Linux; the system's own API on Windows and
macOS) reports when the machine comes back online or changes its transport (Wi-Fi to
Ethernet, VPN up), and the app then reconnects the router link without waiting and asks
the phone engine to re-register (`network_changed`). Loading the backend may talk to
D-Bus, so the app creates this after the first paint.
"""

from __future__ import annotations

import logging

from client.qt import QNetworkInformation, QObject, Signal

log = logging.getLogger(__name__)

_UP = (QNetworkInformation.Reachability.Online, QNetworkInformation.Reachability.Site)


class NetworkWatch(QObject):
    """Emits `back_online` when the network comes back or moves while up."""

    back_online = Signal(str)  # why, in words, for the log

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = ""
        self._up: bool | None = None
        if not QNetworkInformation.loadDefaultBackend():
            log.info("no network information backend: reconnects follow the backoff alone")
            return
        info = QNetworkInformation.instance()
        if info is None:
            return
        self.backend = info.backendName()
        self._up = info.reachability() in _UP
        info.reachabilityChanged.connect(self.on_reachability)
        info.transportMediumChanged.connect(self.on_transport)
        log.info("network information from %s (up: %s)", self.backend, self._up)

    def on_reachability(self, reachability: QNetworkInformation.Reachability) -> None:
        up = reachability in _UP
        was, self._up = self._up, up
        if up and was is False:
            self.back_online.emit(f"network reachable again ({reachability.name})")

    def on_transport(self, medium: QNetworkInformation.TransportMedium) -> None:
        if self._up:
            self.back_online.emit(f"network transport changed to {medium.name}")
