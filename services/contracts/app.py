"""The gateway: frontends call it; it owns users, customers and contracts and routes the rest."""
from __future__ import annotations

from flask import g

from crmkit.service import create_web_app
from crmkit.web.app import make_app


def build_app(settings, db):
    from services.contracts.views import (
        accounts,
        admin,
        api_docs,
        company,
        contracts,
        customers,
        dead_letters,
        deliveries,
        documents,
        emails,
        proxy,
        receivables,
        recurring,
    )
    from services.contracts.users import SESSIONS
    app = make_app("contracts", settings, db)

    @app.before_request  # after make_app's, which read the token: the gateway owns the users it names
    def _current_session():
        if g.get("caller") is not None:
            SESSIONS.check(db, g.caller)

    # werkzeug matches the most specific rule first, so the generic proxy never shadows the gateway's own routes.
    for module in (accounts, company, customers, contracts, proxy, documents, deliveries, receivables, recurring,
                   admin, emails, dead_letters, api_docs):
        app.register_blueprint(module.bp)
    return app


def create_app(settings=None):
    from services.contracts import spec
    return create_web_app(spec(), settings)
