"""The HTTP edge: the ASGI app, the server, authentication, the web config and its reloading."""
