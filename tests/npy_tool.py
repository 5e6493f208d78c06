"""Small float32 .npy files for the end-to-end tests, without numpy.

  python3 tests/npy_tool.py input OUT.npy D0 D1 ...
      writes an array of shape (D0, D1, ...) holding ((i * 37) % 101) / 50 - 1
  python3 tests/npy_tool.py close LABEL A.npy B.npy COUNT
      prints LABEL and the largest |a - b| / (1 + |b|); exits 0 when both
      arrays hold COUNT floats and that is below 1e-4
"""
import struct
import sys


def load(path):
    b = open(path, "rb").read()
    off = 10 + struct.unpack("<H", b[8:10])[0]
    return struct.unpack("<%df" % ((len(b) - off) // 4), b[off:])


def write_input(path, shape):
    dims = ", ".join("%d" % d for d in shape) + ("," if len(shape) == 1 else "")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % dims
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    n = 1
    for d in shape:
        n *= d
    data = struct.pack("<%df" % n, *[((i * 37) % 101) / 50.0 - 1.0 for i in range(n)])
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)


def close(label, a_path, b_path, count):
    a, b = load(a_path), load(b_path)
    err = max(abs(u - v) / (1 + abs(v)) for u, v in zip(a, b))
    print("%s: %.2e" % (label, err))
    return len(a) == len(b) == count and err < 1e-4


if __name__ == "__main__":
    if sys.argv[1] == "input":
        write_input(sys.argv[2], [int(d) for d in sys.argv[3:]])
    elif sys.argv[1] == "close":
        sys.exit(0 if close(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])) else 1)
    else:
        sys.exit("npy_tool.py: unknown command '%s'" % sys.argv[1])
