"""Task runners of script tasks (``taskRunner: {type: ...}``)."""
