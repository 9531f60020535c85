"""Channel adapters: native events in, neutral messages out, and each channel's sender."""
