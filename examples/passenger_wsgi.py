"""Phusion Passenger (cPanel and similar hosts) loads ``application`` from this file, then forks
workers from the process that imported it. ASGIMiddleware starts its event loop lazily, in the
process that serves, so the fork is safe.

    # Passenger: put this file next to your FastAPI code, named passenger_wsgi.py.
    # Locally, the same pre-fork pattern with gunicorn:
    gunicorn --preload --workers 2 examples.passenger_wsgi:application --bind 127.0.0.1:8000
"""

import os

from fastapi import FastAPI

from a2wsgi import ASGIMiddleware

fastapi_app = FastAPI()


@fastapi_app.get("/")
async def index():
    return {"message": "FastAPI behind Passenger", "pid": os.getpid()}


application = ASGIMiddleware(fastapi_app)
