"""Constants shared by the API and the command line, importable without asyncio."""

DEFAULT_API_URL = "http://127.0.0.1:8081/hub/api"
