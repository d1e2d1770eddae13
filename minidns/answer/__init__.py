"""Query bytes → reply bytes, without sockets or asyncio: check → route → look up → sign → encode, and the reply cache, cookies and RRL."""
