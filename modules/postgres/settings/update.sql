{% if observed and observed.isList %}
{% set elements = desired.value|string|split(",")|map("trim", " \"")|select|list %}
{% if elements %}
ALTER SYSTEM SET {{ name|ident_path }} = {{ elements|literal_list }};
{% else %}
{# An empty list: SET of '' would store one empty element (""), which a
   library list cannot load; the reset leaves the (empty) postgresql.conf
   value, which the module's check made sure of. #}
ALTER SYSTEM RESET {{ name|ident_path }};
{% endif %}
{% else %}
ALTER SYSTEM SET {{ name|ident_path }} = {{ desired.value }};
{% endif %}
