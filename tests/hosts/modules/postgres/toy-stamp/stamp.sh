{# On the instance's host: the stamp's text in a file named after the
   instance and the stamp. #}
set -eu
directory={{ spec.directory }}
mkdir -p "$directory"
printf '%s\n' {{ spec.content }} > "$directory/"{{ target ~ "-" ~ spec.name }}
