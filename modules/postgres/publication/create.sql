CREATE PUBLICATION {{ name|ident }}
{%- if desired.allTables %} FOR ALL TABLES
{%- elif desired.tables is defined and desired.tables %} FOR TABLE {% for table in desired.tables %}{% if table is mapping %}{{ table.schema|ident }}.{{ table.table|ident }}{% else %}{{ table|ident_path }}{% endif %}{% if not loop.last %}, {% endif %}{% endfor %}
{%- endif %} WITH (publish = {{ desired.operations|join(", ") }});
COMMENT ON PUBLICATION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
