CREATE EXTENSION {{ name|ident }}
{%- if desired.schema is defined %} SCHEMA {{ desired.schema|ident }}{% endif %}
{%- if desired.version is defined %} VERSION {{ desired.version }}{% endif %}
{%- if desired.cascade %} CASCADE{% endif %};
{# The manifest's comment, else the extension's own; the marker is added as its last line. #}
{% if desired.comment is defined %}
COMMENT ON EXTENSION {{ name|ident }} IS {% include "templates/postgres/comment.sql" %};
{% else %}
COMMENT ON EXTENSION {{ name|ident }} IS {{ (observed.defaultComment ~ "\n" if observed and observed.defaultComment else "") ~ marker }};
{% endif %}
