"""The gateway: frontends call it; it owns users, customers and contracts and routes the rest."""
from __future__ import annotations

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
    app = make_app("contracts", settings, db)
    # werkzeug matches the most specific rule first, so the generic proxy never shadows the gateway's own routes.
    for module in (accounts, company, customers, contracts, proxy, documents, deliveries, receivables, recurring,
                   admin, emails, dead_letters, api_docs):
        app.register_blueprint(module.bp)
    return app


def create_app(settings=None):
    from services.contracts import spec
    return create_web_app(spec(), settings)
