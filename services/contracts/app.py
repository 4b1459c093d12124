"""The gateway: frontends call it; it owns users, customers and contracts and routes the rest."""
from __future__ import annotations

from crmkit.service import create_web_app
from crmkit.web.app import make_app


def build_app(settings, db):
    from services.contracts.views import accounts, company, contracts, customers, proxy
    app = make_app("contracts", settings, db)
    for module in (accounts, company, customers, contracts, proxy):
        app.register_blueprint(module.bp)
    return app


def create_app(settings=None):
    from services.contracts import spec
    return create_web_app(spec(), settings)
