#!/usr/bin/python3
"""Convert a torchvision state dict into netc weights for examples/zoo/NAME.net.

    /usr/bin/python3 scripts/from_torchvision.py NAME STATE_DICT.pt -o W.safetensors [--prog PROG]

STATE_DICT.pt is what torch.save(model.state_dict(), path) writes for
torchvision.models.NAME() (googlenet with aux_logits=False), batch-norm
running statistics and num_batches_tracked included.

The conversion renames only. The netc name of a tensor is its torchvision
name with every index of an nn.Sequential that is followed by another name
part, ".<digits>.", written "_<digits>.":

    layer1.0.downsample.0.weight  ->  layer1_0.downsample_0.weight
    features.1.conv.0.0.weight    ->  features_1.conv_0_0.weight
    fc.bias                       ->  fc.bias

No value is changed and nothing is reshaped: netc keeps PyTorch's layouts
(conv weight [out, in/groups, kh, kw], dense weight [out, in]). The one
conversion is of dtype: every tensor is stored as little-endian float32,
so num_batches_tracked (int64 in PyTorch) becomes a float32 count, exact up
to 2^24 (a larger count is refused). One tensor is added per nn.Dropout:
netc's dropout layer keeps a step counter, NAME.step (the count of masks
training has drawn; inference never reads it), which torch does not have;
it is written as 0, under the dropout module's name renamed by the rule
(classifier.0 -> classifier_0.step).

The state dict must hold exactly the tensors of torchvision's model, with
its shapes: a missing key, an extra key or a wrong shape is an error naming
the key. With --prog, the renamed tensors are also checked against the
parameters `PROG info` lists (names and shapes). The output is written to a
temporary file next to it and renamed into place.
"""

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

NETWORKS = (
    "alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "googlenet",
    "mobilenet_v2", "shufflenet_v2_x1_0", "resnet18", "resnext50_32x4d",
)


class ConvertError(Exception):
    pass


def netc_name(torch_name):
    """torchvision state-dict name -> netc parameter name (the naming rule)."""
    return re.sub(r"\.(\d+)(?=\.)", r"_\1", torch_name)


def build_model(name):
    """The torchvision model NAME builds, as the .net file describes it."""
    import torchvision
    if name not in NETWORKS:
        raise ConvertError(f"unknown network '{name}'; known: {', '.join(NETWORKS)}")
    fn = getattr(torchvision.models, name)
    if name == "googlenet":
        return fn(weights=None, aux_logits=False, transform_input=False, init_weights=False)
    return fn(weights=None)


def expected_tensors(name):
    """({torch name: shape} of the state dict of torchvision's NAME,
    [names of its dropout modules])."""
    import torch
    model = build_model(name)
    dropouts = [n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}, dropouts


def check_state_dict(sd, expected):
    if not isinstance(sd, dict):
        raise ConvertError(f"expected a state dict (a dict of tensors), found {type(sd).__name__}")
    missing = [k for k in expected if k not in sd]
    extra = [k for k in sd if k not in expected]
    problems = []
    for k in missing:
        problems.append(f"missing key '{k}' (expected shape {list(expected[k])})")
    for k in extra:
        problems.append(f"unexpected key '{k}': the torchvision model has no such tensor")
    for k in expected:
        if k in sd:
            v = sd[k]
            if not hasattr(v, "shape"):
                problems.append(f"key '{k}' is not a tensor ({type(v).__name__})")
            elif tuple(v.shape) != expected[k]:
                problems.append(f"key '{k}': expected shape {list(expected[k])}, found {list(v.shape)}")
    if problems:
        raise ConvertError("\n".join(problems))


def to_float32_bytes(key, tensor):
    import torch
    t = tensor.detach().cpu()
    if t.dtype == torch.float32:
        pass
    elif not t.is_floating_point():
        if t.numel() and int(t.abs().max()) > (1 << 24):
            raise ConvertError(f"key '{key}': integer value {int(t.abs().max())} is not exact as float32")
        t = t.to(torch.float32)
    else:
        raise ConvertError(f"key '{key}': expected float32, found {t.dtype}")
    t = t.contiguous()
    if not bool(torch.isfinite(t).all()):
        raise ConvertError(f"key '{key}': holds NaN or infinity")
    data = t.numpy().astype("<f4", copy=False).tobytes()
    return list(t.shape), data


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, shape, bytes), in the order to store them."""
    header = {"__metadata__": metadata}
    offset = 0
    for name, shape, data in tensors:
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)  # data section 8-byte aligned, as the format recommends
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(hjson)))
            f.write(hjson)
            for _, _, data in tensors:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def prog_params(prog):
    """{name: shape} of the parameters and state tensors `PROG info` lists."""
    out = subprocess.run([prog, "info"], check=True, capture_output=True, text=True).stdout
    params = {}
    in_table = False
    for line in out.splitlines():
        if line.startswith("param "):
            in_table = True
            continue
        if in_table:
            f = line.split()
            if len(f) < 2 or not f[1].startswith("["):
                if params:
                    break
                continue
            dims = f[1].strip("[]")
            params[f[0]] = tuple(int(d) for d in dims.split(",")) if dims else ()
    return params


def check_against_prog(renamed, prog):
    want = prog_params(prog)
    problems = []
    for k, shape in want.items():
        if k not in renamed:
            problems.append(f"{prog} expects '{k}' {list(shape)}, which the conversion does not give")
        elif tuple(renamed[k]) != shape:
            problems.append(f"'{k}': {prog} expects shape {list(shape)}, the conversion gives {list(renamed[k])}")
    for k in renamed:
        if k not in want:
            problems.append(f"'{k}': {prog} has no such parameter")
    if problems:
        raise ConvertError("\n".join(problems))


def convert(name, sd_path, out_path, prog=None):
    import torch
    expected, dropouts = expected_tensors(name)
    try:
        # weights_only: tensors and containers only, no arbitrary pickled objects
        sd = torch.load(sd_path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        raise ConvertError(f"cannot be read as a torch.save file of tensors: {e}") from e
    check_state_dict(sd, expected)
    tensors, seen = [], {}
    for key, value in sd.items():
        new = netc_name(key)
        if new in seen:
            raise ConvertError(f"keys '{seen[new]}' and '{key}' both become '{new}'")
        seen[new] = key
        shape, data = to_float32_bytes(key, value)
        tensors.append((new, shape, data))
    for module in dropouts:
        # netc's dropout keeps a step counter (which masks training draws);
        # torch's keeps nothing: the counter starts afresh at 0.
        new = netc_name(module + ".step")
        if new in seen:
            raise ConvertError(f"key '{seen[new]}' and dropout '{module}' both become '{new}'")
        seen[new] = module
        tensors.append((new, [], struct.pack("<f", 0.0)))
    if prog:
        check_against_prog({n: s for n, s, _ in tensors}, prog)
    write_safetensors(out_path, tensors, {"format": "pt", "netc.source": f"torchvision.models.{name}"})
    return len(tensors)


def main(argv=None):
    ap = argparse.ArgumentParser(description="torchvision state dict -> netc weights (safetensors), by renaming")
    ap.add_argument("name", help="torchvision function name: " + ", ".join(NETWORKS))
    ap.add_argument("state_dict", help="file written by torch.save(model.state_dict(), path)")
    ap.add_argument("-o", "--output", required=True, help="weights file to write (.safetensors)")
    ap.add_argument("--prog", help="a program built from examples/zoo/NAME.net: check names and shapes against its `info`")
    a = ap.parse_args(argv)
    try:
        n = convert(a.name, a.state_dict, a.output, a.prog)
    except ConvertError as e:
        for line in str(e).splitlines():
            print(f"from_torchvision: error: {a.state_dict}: {line}", file=sys.stderr)
        return 1
    print(f"{a.output}: {n} tensors from {a.state_dict} ({a.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
