{# Create or rewrite the file. #}
set -eu
directory={{ spec.directory }}
mkdir -p "$directory"
printf '%s\n' {{ desired.content }} > "$directory/"{{ name }}
