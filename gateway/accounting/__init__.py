"""What was and was not delivered: delivery counts per device and hour, and last-seen."""
