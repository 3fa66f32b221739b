# Runs first on every reset. Keep it tiny: a syntax error here needs a reflash.
import gc

gc.collect()
