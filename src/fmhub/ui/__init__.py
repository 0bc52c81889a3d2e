"""The web UI: server-rendered Jinja2 pages with htmx and a small chart library (uPlot), all served
by ``fmhub serve`` from this package (no CDN, no Node build).

Each page lives in one module under :mod:`fmhub.ui.routes` and names its JSON twin, the REST API
URL that answers the same content (the ``JSON`` link in the page header).
"""
