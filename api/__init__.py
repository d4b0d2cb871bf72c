"""The JSON API under ``/api/v1/``: thin function views over the services, bearer auth only.

``http`` is the plumbing (auth, rate limit, access, JSON, errors), ``shapes`` the JSON of each
resource, and one module per resource. Every lifecycle change calls ``workspaces.dispatch``.
"""
