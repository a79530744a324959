"""The currency endpoint on FastAPI: `api.main` (async handlers) and `api.sync_main` (plain `def` handlers)."""
