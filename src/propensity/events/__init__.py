"""Event and order logs → validated canonical events → point-in-time features and labels."""
