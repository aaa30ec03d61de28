"""The network edge: the FastAPI app, the WebSocket route, the OpenAI routes, security, metrics."""
