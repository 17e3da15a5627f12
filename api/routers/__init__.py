"""Small routers, one per concern, mounted by ``api.app.create_app``."""
