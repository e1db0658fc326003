"""`moma serve`: registered models behind a small REST API.

source   where models come from (the registry) and how one is loaded from the cache
slots    the served models (primaries, canaries, shadows); a reload swaps a fully loaded
         version in atomically
traffic  which of a model's primary and canary answers a request
shadow   copies of requests run on a shadow off the response path, and its agreement
inputs   request JSON -> a feature matrix, with 4xx errors for anything malformed
metrics  Prometheus text exposition, written by hand
predlog  sampled prediction logging as JSON lines
admin    who may call the admin routes: open on loopback, a token from the environment beyond
app      the Starlette app and the uvicorn runner: the only starlette/uvicorn importer
settings the options of a worker process as MOMA_SERVE_* environment variables
factory  the ASGI app factory worker processes build their app with (uvicorn, gunicorn)
shared   metrics summed over worker processes, through per-worker snapshot files
"""
