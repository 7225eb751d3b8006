"""JSON routes for widgets, health checks and Stripe, on a plain FastAPI app that NiceGUI mounts under."""

from fastapi import FastAPI

from api import health, metrics, stripe_webhook, unmatched, widget


def create_api_app() -> FastAPI:
    """The parent app: API routers first (a route added after NiceGUI's `/` mount would be swallowed by it), the
    widget API leading (routes match in order), and last the JSON answer to any other `/api/...` request."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    routers = (widget.router, health.router, stripe_webhook.router, metrics.router)
    for router in routers:
        app.include_router(router)
    app.router.routes.append(unmatched.UnmatchedApiRequest(routers))
    return app
