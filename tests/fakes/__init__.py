"""Loopback stand-ins for services the plugin's tests cannot reach (identity endpoints, Entra ID)."""
