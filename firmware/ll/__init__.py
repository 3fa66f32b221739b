# livinglab firmware package (MicroPython). Nothing runs at import time.
