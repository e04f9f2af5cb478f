{# The wanted files that exist, with their content, as one JSON list. File
   names are plain (the schema's pattern); a backslash or a quote in the
   content is escaped for JSON. #}
set -eu
printf '['
separator=
{% for item in wanted %}
directory={{ item.spec.directory }}
name={{ item.identity }}
if [ -f "$directory/$name" ]; then
    content=$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$directory/$name")
    printf '%s{"identity": "%s", "content": "%s"}' "$separator" "$name" "$content"
    separator=,
fi
{% endfor %}
printf ']\n'
