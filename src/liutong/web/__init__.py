"""The HTTP application: FastAPI, one error handler, locally served API docs."""
