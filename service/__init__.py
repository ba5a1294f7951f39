"""mnist-serving's HTTP service: ``create_app()`` builds the Flask app that gunicorn runs."""
from service.app import create_app

__all__ = ["create_app"]
