{% set tables = desired.tables|default([]) %}
{% set schemas = desired.schemas|default([]) %}
CREATE PUBLICATION {{ name|ident }}
{%- if desired.allTables %} FOR ALL TABLES
{%- elif tables or schemas %} FOR {% if tables %}TABLE {% for table in tables %}{% include "modules/postgres/publication/table.sql" %}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}
{%- if tables and schemas %}, {% endif %}{% if schemas %}TABLES IN SCHEMA {{ schemas|ident_list }}{% endif %}
{%- endif %} WITH (publish = {{ desired.operations|join(", ") }}, publish_via_partition_root = {{ desired.publishViaPartitionRoot }});
{% if desired.owner is defined %}
ALTER PUBLICATION {{ name|ident }} OWNER TO {{ desired.owner|ident }};
{% endif %}
COMMENT ON PUBLICATION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
