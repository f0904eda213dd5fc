"""Customer channels: email (IMAP/SMTP), web chat, SMS (Twilio wire format).

`install_channels(service, config)` switches on what `config` asks for and returns the HTTP
and websocket routes to mount; with nothing configured it returns no routes and changes
nothing (the embedded demo router runs exactly as without channels). Every channel enters
customer messages through `router.channels.inbound.deliver` (the ACD's own inbound path) and
receives agents' replies through `router.channels.outbound.Outbound` (the ACD's
`on_outbound` hook); `router.channels.survey` asks chat and SMS customers the post-conversation
survey (the ACD's `on_ended` hook). docs/channels.md is the admin's guide.
"""

from __future__ import annotations

import logging

from starlette.routing import BaseRoute

from router.channels import admin, identities, store
from router.channels.config import ChannelConfigError, ChannelsConfig
from router.service import Service

log = logging.getLogger(__name__)

__all__ = ["ChannelConfigError", "ChannelsConfig", "install_channels"]


def install_channels(service: Service, config: ChannelsConfig) -> list[BaseRoute]:
    """Set up the configured channels on `service` (tables, hooks, start-up tasks) and return
    their routes.

    Raises:
        ChannelConfigError: a channel names a queue the router does not have.
    """
    if not config.any:
        return []
    for queue in config.queues():
        if queue not in service.config.queues:
            raise ChannelConfigError(
                f"channel queue {queue!r} is not one of the router's "
                f"queues ({', '.join(service.config.queues)})"
            )
    from router.channels.outbound import Outbound
    from router.channels.survey import Surveys

    store.migrate(service.storage)
    outbound = Outbound(service)
    outbound.install()
    surveys = Surveys(service)
    routes: list[BaseRoute] = [*admin.routes(service), *identities.routes(service)]
    names = []
    if config.chat is not None:
        from router.channels.chat import ChatChannel

        routes += ChatChannel(service, config.chat, outbound, surveys).routes()
        names.append("chat")
    if config.sms is not None:
        from router.channels.sms import SmsChannel

        routes += SmsChannel(service, config.sms, outbound, config.public_url, surveys).routes()
        names.append("sms")
    if config.email is not None:
        from router.channels.email import EmailChannel

        service.starters.append(EmailChannel(service, config.email, outbound).start)
        names.append("email")
    service.starters.append(outbound.start)
    log.info("channels on: %s", ", ".join(names))
    return routes
