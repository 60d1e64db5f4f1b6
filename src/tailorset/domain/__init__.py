"""Pure rules of the service: no web framework, no SQL."""
