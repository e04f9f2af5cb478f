CREATE PUBLICATION {{ name|ident }}
{%- if desired.allTables %} FOR ALL TABLES
{%- elif desired.tables is defined and desired.tables %} FOR TABLE {% for table in desired.tables %}{{ table|ident_path }}{% if not loop.last %}, {% endif %}{% endfor %}
{%- endif %} WITH (publish = {{ desired.operations|join(", ") }});
COMMENT ON PUBLICATION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
