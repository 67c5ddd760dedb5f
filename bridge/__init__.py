"""Segue's bridge: OSC protocol v1 (protocol, server, client), loopback rules, and `segue jam` (live)."""
