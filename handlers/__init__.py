"""Channel-neutral conversation logic. Imports storage, never a platform or the web framework."""
