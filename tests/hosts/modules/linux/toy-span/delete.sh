{# Remove this member's file (--prune). #}
set -eu
rm -f {{ spec.directory }}/{{ target }}/{{ name }}
