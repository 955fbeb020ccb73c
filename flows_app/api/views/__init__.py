"""API views, one module per resource; they parse the request, call a service and shape the answer."""
