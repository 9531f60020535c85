"""Runtime and channel adapters: the only code importing telegram, twilio or the web."""
