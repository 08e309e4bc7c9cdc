"""Who acts: connections, Key Vault secrets, token providers and caches, sign-in."""
