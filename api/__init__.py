"""JSON routes for widgets, health checks and Stripe, on a plain FastAPI app that NiceGUI mounts under."""

from fastapi import FastAPI

from api import health, stripe_webhook, widget


def create_api_app() -> FastAPI:
    """The parent app: API routers first (a route added after NiceGUI's `/` mount would be swallowed by it)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(widget.router)
    app.include_router(health.router)
    app.include_router(stripe_webhook.router)
    return app
