"""From the buffer to the store: batching, retry with backoff, isolating bad points."""
