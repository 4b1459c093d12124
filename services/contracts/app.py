"""The gateway: frontends call it; it owns users, customers and contracts and routes the rest."""
from __future__ import annotations

from crmkit.service import create_web_app
from crmkit.web.app import make_app


def build_app(settings, db):
    from services.contracts.views import accounts, company, contracts, customers, proxy
    app = make_app("contracts", settings, db)
    for module in (accounts, company, customers, contracts, proxy):
        app.register_blueprint(module.bp)
    from services.contracts.views.documents import bp as pdfs
    app.register_blueprint(pdfs)
    from services.contracts.views import admin, deliveries, receivables, recurring
    for module in (deliveries, receivables, recurring, admin):
        app.register_blueprint(module.bp)
    from services.contracts.views.emails import bp as emails
    app.register_blueprint(emails)
    from services.contracts.views.dead_letters import bp as dead_letters
    app.register_blueprint(dead_letters)
    from services.contracts.views.api_docs import bp as api_docs
    app.register_blueprint(api_docs)
    return app


def create_app(settings=None):
    from services.contracts import spec
    return create_web_app(spec(), settings)
