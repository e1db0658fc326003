"""Use cases. Services return result dataclasses; they never print or exit."""
