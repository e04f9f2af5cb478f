{# On the lead: write the file (after a pause, so that a member that did not
   wait for it would find nothing). On another member: copy the lead's
   file, which must exist by now. Every write is logged in order. #}
set -eu
directory={{ spec.directory }}
mkdir -p "$directory/"{{ target }}
{% if target == lead %}
sleep 0.3
printf '%s\n' {{ desired.content }} > "$directory/"{{ target }}/{{ name }}
{% else %}
if [ ! -f "$directory/"{{ lead }}/{{ name }} ]; then
    echo "the lead "{{ lead }}" has not written "{{ name }}" yet" >&2
    exit 1
fi
cp "$directory/"{{ lead }}/{{ name }} "$directory/"{{ target }}/{{ name }}
{% endif %}
printf '%s\n' {{ target }} >> "$directory/order.log"
