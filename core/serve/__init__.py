"""Serve a bundle over HTTP: JSON in, the Predictor's predictions out (`annotune serve`).

Needs the `serve` extra (starlette and uvicorn); the modules that only shape requests,
batches and the schema import neither, so they can be used and tested without it::

    limits.py    ServeLimits: batch size, batching window, queue, body and item bounds
    batching.py  MicroBatcher: requests of concurrent clients become one Predictor call
    payloads.py  a request body into checked items, or a 400 that says what is wrong
    schema.py    the OpenAPI document, from the task's fields and a prediction of the model
    app.py       the Starlette application: routes, status codes, start-up and shutdown
    server.py    uvicorn on a socket bound here (port 0 works), graceful stop on Ctrl-C
"""
