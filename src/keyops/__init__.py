"""keyops: keys & secrets manager for API gateways."""
