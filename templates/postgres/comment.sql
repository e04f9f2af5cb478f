{# The text of a COMMENT: the manifest's comment, and the ownership marker on
   its own last line when fleetform owns the object. #}
{%- if owned and desired.comment is defined -%}
{{ desired.comment ~ "\n" ~ marker }}
{%- elif owned -%}
{{ marker }}
{%- elif desired.comment is defined -%}
{{ desired.comment }}
{%- else -%}
NULL
{%- endif -%}
