"""An OpenAI Realtime-compatible WebSocket endpoint (ws://HOST:PORT/v1/realtime) and the web page that uses it."""
