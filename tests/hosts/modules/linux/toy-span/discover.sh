{# The wanted files that exist in this member's folder, with their content,
   as one JSON list. File names are plain (the schema's pattern); a
   backslash or a quote in the content is escaped for JSON. #}
set -eu
printf '['
separator=
{% for item in wanted %}
file={{ item.spec.directory }}/{{ target }}/{{ item.identity }}
if [ -f "$file" ]; then
    content=$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$file")
    printf '%s{"identity": "%s", "content": "%s"}' "$separator" {{ item.identity }} "$content"
    separator=,
fi
{% endfor %}
printf ']\n'
