# The unix port has no watchdog: this thread stands in for one in simulation and
# tests. On expiry it kills the process (SIGALRM), as a real one resets the chip: no
# cleanup, no last words beyond one line. Loaded by loader.py only on the unix port.
import os
import sys
import time


class FakeWdt:
    def __init__(self, ms):
        import _thread

        self.ms = ms
        self.fed = time.ticks_ms()
        _thread.start_new_thread(self._watch, ())

    def feed(self):
        self.fed = time.ticks_ms()

    def _watch(self):
        while time.ticks_diff(time.ticks_ms(), self.fed) < self.ms:
            time.sleep_ms(50)
        sys.stderr.write("loader: watchdog expired\n")
        os.system("kill -ALRM $PPID")  # the shell's parent is this process
