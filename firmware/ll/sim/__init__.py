# Simulated world and register-level sensor twins for the unix port.
