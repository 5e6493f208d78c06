#!/bin/bash
# examples/zoo: every torchvision network checks, and its parameter count is
# torchvision 0.14's (sum of p.numel() over model.parameters(), model built
# as scripts/from_torchvision.py builds it; recorded here so the test needs
# no PyTorch). bench/zoo_check.py compares the outputs.
#   tests/zoo_tv.sh build/netc
set -u
netc=${1:?usage: zoo_tv.sh NETC}
cd "$(dirname "$0")/.." || exit 1

declare -A torchvision_params=(
  [alexnet]=61100840
  [vgg11]=132863336
  [vgg11_bn]=132868840
  [vgg16]=138357544
  [vgg16_bn]=138365992
  [googlenet]=6624904
  [mobilenet_v2]=3504872
  [shufflenet_v2_x1_0]=2278604
  [resnet18]=11689512
  [resnext50_32x4d]=25028904
)

fail=0
for name in alexnet vgg11 vgg11_bn vgg16 vgg16_bn googlenet mobilenet_v2 \
            shufflenet_v2_x1_0 resnet18 resnext50_32x4d; do
  net=examples/zoo/$name.net
  if ! out=$("$netc" check "$net" 2>&1); then
    echo "FAIL $net: netc check failed:"; echo "$out"; fail=1; continue
  fi
  first=$(printf '%s\n' "$out" | head -1)
  if [ "$first" != "network $name" ]; then
    echo "FAIL $net: network is named '${first#network }', not '$name'"; fail=1
  fi
  if ! printf '%s\n' "$out" | grep -q '^image  *input  *\[N, 3, 224, 224\]'; then
    echo "FAIL $net: input is not image [3, 224, 224]"; fail=1
  fi
  if ! printf '%s\n' "$out" | grep -q ' \[N, 1000\] .*$' ; then
    echo "FAIL $net: no [N, 1000] output"; fail=1
  fi
  got=$(printf '%s\n' "$out" | sed -n 's/^total: \([0-9]*\) parameters.*/\1/p')
  want=${torchvision_params[$name]}
  if [ "$got" != "$want" ]; then
    echo "FAIL $net: $got parameters, torchvision has $want"; fail=1
  else
    echo "ok   $net: $got parameters"
  fi
done
exit $fail
