#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Writes a 512-byte MBR boot sector that prints UVM-DISK-BOOT-OK on COM1
and halts forever: the payload of the firmware-boot test (test-diskboot.c).

The BIOS (SeaBIOS under qemu) loads the sector at 0000:7c00 and jumps to it
in 16-bit real mode.  The code is hand-assembled below, one instruction per
line with its bytes; jumps are relative, so labels are resolved in a second
pass.  It polls the UART's line status register before each byte instead of
trusting the transmitter to be ready, and touches nothing but COM1.

usage: make-bootsector.py OUTPUT
"""

import sys

MARKER = b"UVM-DISK-BOOT-OK\r\n"
LOAD_ADDRESS = 0x7C00
COM1 = 0x3F8            # data register (THR when written)
COM1_LSR = COM1 + 5     # line status register; bit 5: THR empty
LSR_THR_EMPTY = 0x20


def le16(value):
    return bytes((value & 0xFF, value >> 8))


def assemble():
    """(bytes, comment) items, plus labels (name) and rel8 jumps to them."""
    program = [
        ("start",),
        (b"\xFA", "cli                      ; no interrupts: nothing here handles them"),
        (b"\x31\xC0", "xor ax, ax"),
        (b"\x8E\xD8", "mov ds, ax               ; ds = 0: the string is at 0000:7c00 + offset"),
        (("abs16", b"\xBE", "message"), "mov si, message"),
        (b"\xFC", "cld                      ; lodsb counts up"),
        ("next_char",),
        (b"\xAC", "lodsb                    ; al = [ds:si], si += 1"),
        (b"\x84\xC0", "test al, al"),
        (("rel8", b"\x74", "halt"), "jz halt                  ; the terminating NUL"),
        (b"\x88\xC4", "mov ah, al               ; keep the character while al reads the LSR"),
        (b"\xBA" + le16(COM1_LSR), "mov dx, 0x3fd            ; COM1 line status register"),
        ("wait_thr",),
        (b"\xEC", "in al, dx"),
        (bytes((0xA8, LSR_THR_EMPTY)), "test al, 0x20            ; transmitter holding register empty?"),
        (("rel8", b"\x74", "wait_thr"), "jz wait_thr"),
        (b"\xBA" + le16(COM1), "mov dx, 0x3f8            ; COM1 data register"),
        (b"\x88\xE0", "mov al, ah"),
        (b"\xEE", "out dx, al               ; send the character"),
        (("rel8", b"\xEB", "next_char"), "jmp next_char"),
        ("halt",),
        (b"\xFA", "cli                      ; halt forever: hlt with interrupts off"),
        (b"\xF4", "hlt                      ; only an NMI wakes it ..."),
        (("rel8", b"\xEB", "halt"), "jmp halt                 ; ... and then it halts again"),
        ("message",),
        (MARKER + b"\x00", "db 'UVM-DISK-BOOT-OK', 13, 10, 0"),
    ]

    def size(item):
        code = item[0]
        if isinstance(code, tuple):
            return len(code[1]) + (2 if code[0] == "abs16" else 1)
        return len(code)

    labels, offset = {}, 0
    for item in program:
        if len(item) == 1:
            labels[item[0]] = offset
        else:
            offset += size(item)

    out, offset = bytearray(), 0
    for item in program:
        if len(item) == 1:
            continue
        code, end = item[0], offset + size(item)
        if isinstance(code, tuple):
            kind, opcode, label = code
            if kind == "abs16":
                code = opcode + le16(LOAD_ADDRESS + labels[label])
            else:
                displacement = labels[label] - end
                assert -128 <= displacement <= 127, label
                code = opcode + bytes((displacement & 0xFF,))
        out += code
        offset = end
    return bytes(out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    code = assemble()
    assert len(code) <= 446, "the code must leave the partition table free"
    # Bytes 446-509: an empty partition table; 510-511: the boot signature
    # the BIOS checks before it jumps to the sector.
    sector = code.ljust(510, b"\x00") + b"\x55\xAA"
    assert len(sector) == 512
    with open(sys.argv[1], "wb") as f:
        f.write(sector)


if __name__ == "__main__":
    main()
