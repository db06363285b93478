"""The HTTP front end: the Dragon v1 API on aiohttp."""
