{# The text of a COMMENT: the manifest's comment, and an ownership marker on
   its own last line: the one the object carries (kept as it is, whichever
   environment it names; a marker that names none becomes this environment's,
   whose manifests manage the object), else this environment's when
   fleetform owns the object. #}
{%- if observed and observed.markerLine and observed.ownedBy != "" -%}
{%- set kept = observed.markerLine -%}
{%- elif owned or (observed and observed.markerLine) -%}
{%- set kept = marker -%}
{%- else -%}
{%- set kept = none -%}
{%- endif -%}
{%- if kept and desired.comment is defined -%}
{{ desired.comment ~ "\n" ~ kept }}
{%- elif kept -%}
{{ kept }}
{%- elif desired.comment is defined -%}
{{ desired.comment }}
{%- else -%}
NULL
{%- endif -%}
