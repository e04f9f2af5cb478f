{# A list parameter (search_path) is written element by element, as
   PostgreSQL quotes each (the list parameters a session can set, as in
   discover.sql); an empty list as the empty string. #}
{% set is_list = desired.parameter in ["search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries"] %}
{% set elements = desired.value|string|split(",")|map("trim", " \"")|select|list %}
{% include "modules/postgres/role-settings/target.sql" %} SET {{ desired.parameter|ident_path }} = {% if is_list and elements %}{{ elements|literal_list }}{% else %}{{ desired.value }}{% endif %};
