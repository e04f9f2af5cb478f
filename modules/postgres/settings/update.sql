{% if observed and observed.isList %}
ALTER SYSTEM SET {{ name|ident_path }} = {{ desired.value|string|split(",")|map("trim", " \"")|list|literal_list }};
{% else %}
ALTER SYSTEM SET {{ name|ident_path }} = {{ desired.value }};
{% endif %}
