"""The emulated RDP host: a socket driver around the sans-IO server connection."""
