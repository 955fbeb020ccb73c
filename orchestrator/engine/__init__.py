"""The pure engine: flow model, states, expressions, executor decisions.

Nothing in this package imports Django or Celery.
"""
