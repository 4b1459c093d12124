"""Documents: rendered PDFs, content-addressed by sha256, and their templates."""


def spec():
    from crmkit.service import ServiceSpec
    from services.documents.app import build_app
    return ServiceSpec(name="documents", tables=[], build_app=build_app, handlers={})
