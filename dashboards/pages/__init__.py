"""Dashboard pages; each module registers itself and exposes ``layout(**query)``."""
