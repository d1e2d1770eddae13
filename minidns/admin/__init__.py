"""The aiohttp admin API and event ingest: the top layer, above the server."""
