{# What host modules may need to know about a Linux host, as one JSON
   object. Host names and kernel releases hold no quotes or backslashes;
   anything else is dropped rather than breaking the JSON. #}
set -eu
clean() { printf '%s' "$1" | tr -cd 'A-Za-z0-9._+:~-'; }
printf '{"hostname": "%s", "kernel": "%s", "machine": "%s", "uid": %s}\n' \
    "$(clean "$(uname -n)")" "$(clean "$(uname -r)")" "$(clean "$(uname -m)")" "$(id -u)"
