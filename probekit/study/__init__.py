"""``probekit study``: the paper's five experiments in one command (Fukuhata & Kano 2025)."""
