#!/usr/bin/env bash
# Keeps docs/ir.md true: every dump quoted in it (code blocks whose first
# line starts with '%', 'kernel' or 'params:') must appear line for line in
# the golden files that the golden tests check against the compiler.
set -euo pipefail
doc=docs/ir.md
status=0
awk '/^```/{inb=!inb; if(inb){n++}; next} inb{print n"\t"$0}' "$doc" > /tmp/netc-doc-blocks.$$
for b in $(cut -f1 /tmp/netc-doc-blocks.$$ | sort -un); do
  first=$(awk -F'\t' -v b="$b" '$1==b{print $2; exit}' /tmp/netc-doc-blocks.$$)
  case "$first" in %*|kernel*|params:*) ;; *) continue ;; esac
  while IFS= read -r line; do
    if ! grep -qxF -- "$line" tests/golden/*.expected; then
      echo "docs/ir.md block $b: not in any golden dump: $line"; status=1
    fi
  done < <(awk -F'\t' -v b="$b" '$1==b{sub(/^[^\t]*\t/,""); print}' /tmp/netc-doc-blocks.$$)
done
rm -f /tmp/netc-doc-blocks.$$
[ $status = 0 ] && echo "docs/ir.md dumps match the golden files"
exit $status
