CREATE EXTENSION {{ name|ident }}
{%- if desired.schema is defined %} SCHEMA {{ desired.schema|ident }}{% endif %}
{%- if desired.version is defined %} VERSION {{ desired.version }}{% endif %}
{%- if desired.cascade %} CASCADE{% endif %};
{# The extension's own comment stays; the marker is added as its last line. #}
COMMENT ON EXTENSION {{ name|ident }} IS {{ (observed.defaultComment ~ "\n" if observed and observed.defaultComment else "") ~ marker }};
