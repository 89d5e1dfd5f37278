"""Pure decisions: what objects and status a custom resource implies. No I/O here."""
