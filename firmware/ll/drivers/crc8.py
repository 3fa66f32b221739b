# Sensirion CRC-8: polynomial 0x31, init 0xFF, no reflection, no final XOR.
# Datasheet example (SCD4x section 3.11): CRC(0xBEEF) = 0x92.


def crc8(buf, start=0, n=2):
    crc = 0xFF
    for i in range(start, start + n):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc
