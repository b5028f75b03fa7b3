"""nodemgr's web endpoints: the install-finished callback and boot files over HTTP.

``app.create_app()`` builds the Flask application (served by gunicorn with
``etc/gunicorn.conf.py``, or through ``cgi/``); ``callback`` holds the decisions and actions,
free of Flask so they are tested and benchmarked directly.
"""
