# Fake buses with the machine.I2C / UART / Pin methods the drivers use; each
# forwards to a twin that models the chip's registers or byte stream.


class FakeI2C:
    def __init__(self):
        self.devices = {}  # address -> twin
        self.fail = False  # set to simulate a stuck bus

    def attach(self, address, twin):
        self.devices[address] = twin

    def _dev(self, addr):
        if self.fail or addr not in self.devices:
            raise OSError(19)  # ENODEV: no ACK
        return self.devices[addr]

    def scan(self):
        return sorted(self.devices)

    def readfrom_mem_into(self, addr, reg, buf):
        self._dev(addr).read_mem(reg, buf)

    def writeto_mem(self, addr, reg, buf):
        self._dev(addr).write_mem(reg, buf)

    def writeto(self, addr, buf, stop=True):
        self._dev(addr).write(buf)
        return len(buf)

    def readfrom_into(self, addr, buf, stop=True):
        self._dev(addr).read(buf)


class FakeUART:
    def __init__(self, twin):
        self.twin = twin

    def any(self):
        return self.twin.any()

    def read(self, n=-1):
        buf = bytearray(self.twin.any() if n < 0 else n)
        k = self.readinto(buf)
        return bytes(buf[:k]) if k else None

    def readinto(self, buf, n=-1):
        n = len(buf) if n < 0 else n
        return self.twin.readinto(buf, n)


class FakePin:
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, pin_id):
        self.pin_id = pin_id
        self.handler = None
        self.level = 0

    def irq(self, handler=None, trigger=1):
        self.handler = handler

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = v

    def pulse(self, n):
        h = self.handler
        if h is not None:
            for _ in range(n):
                h(self)


class FakeADC:
    """machine.ADC: ``read_u16()`` (0..65535) from a twin's ``read_u16()``."""

    def __init__(self, twin):
        self.twin = twin

    def read_u16(self):
        return self.twin.read_u16()
