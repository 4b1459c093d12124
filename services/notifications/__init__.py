"""Notifications: emails (queued, sent, failed), department inboxes and department queues."""


def spec():
    from crmkit.service import ServiceSpec
    from services.notifications.app import build_app
    return ServiceSpec(name="notifications", tables=[], build_app=build_app, handlers={})
