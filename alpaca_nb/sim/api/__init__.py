"""The local broker's API layer: Alpaca's REST routes and its two websocket streams, over the account and the market."""
