{# Remove the file (--prune). #}
set -eu
rm -f {{ spec.directory }}/{{ name }}
