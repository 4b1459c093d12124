"""The quotes service's HTTP side."""
from __future__ import annotations

from crmkit.service import create_web_app
from crmkit.web.app import make_app


def build_app(settings, db):
    return make_app("quotes", settings, db)


def create_app(settings=None):
    from services.quotes import spec
    return create_web_app(spec(), settings)
