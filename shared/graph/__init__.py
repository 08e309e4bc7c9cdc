"""Microsoft Graph: the client, retries, the per-mailbox limiter and folder paths."""
