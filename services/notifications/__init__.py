"""Notifications: emails (queued, sent, failed), department inboxes and department queues."""


def spec():
    from crmkit.service import ServiceSpec
    from services.notifications.app import build_app
    from services.notifications.emails import sender_loop
    from services.notifications.handlers import HANDLERS, make_context
    from services.notifications.models import TABLES
    return ServiceSpec(name="notifications", tables=TABLES, build_app=build_app, handlers=HANDLERS,
                       make_context=make_context, loops=[sender_loop])
