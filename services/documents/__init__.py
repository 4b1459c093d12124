"""Documents: rendered PDFs, content-addressed by sha256, and their templates."""


def spec():
    from crmkit.service import ServiceSpec
    from services.documents.app import build_app
    from services.documents.handlers import HANDLERS, make_context
    from services.documents.models import TABLES
    return ServiceSpec(name="documents", tables=TABLES, build_app=build_app, handlers=HANDLERS,
                       make_context=make_context)
