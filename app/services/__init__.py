"""Business rules, one module per domain; callable from views, CLI and tests alike."""
