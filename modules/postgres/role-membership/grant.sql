{# GRANT sets the options it names; a membership that exists keeps the others. #}
{% if server_version_num >= 160000 %}
{% set options %}WITH ADMIN {% if desired.admin %}TRUE{% else %}FALSE{% endif %}
{%- if desired.inherit is defined %}, INHERIT {% if desired.inherit %}TRUE{% else %}FALSE{% endif %}{% endif %}
{%- if desired.set is defined %}, SET {% if desired.set %}TRUE{% else %}FALSE{% endif %}{% endif %}{% endset %}
GRANT {{ spec.group|ident }} TO {{ spec.role|ident }} {{ options }};
{# Grants by other grantors give options of their own: each is brought to
   what the manifest says (an option the manifest leaves out is theirs). #}
{% for grant in (observed.grants if observed else []) %}
{% if not desired.admin and grant.admin %}
REVOKE ADMIN OPTION FOR {{ spec.group|ident }} FROM {{ spec.role|ident }} GRANTED BY {{ grant.grantor|ident }};
{% endif %}
{% set inherit_differs = desired.inherit is defined and grant.inherit != desired.inherit %}
{% set set_differs = desired.set is defined and grant.set != desired.set %}
{% if inherit_differs or set_differs %}
GRANT {{ spec.group|ident }} TO {{ spec.role|ident }} WITH
{%- if inherit_differs %} INHERIT {% if desired.inherit %}TRUE{% else %}FALSE{% endif %}{% endif %}
{%- if inherit_differs and set_differs %},{% endif %}
{%- if set_differs %} SET {% if desired.set %}TRUE{% else %}FALSE{% endif %}{% endif %} GRANTED BY {{ grant.grantor|ident }};
{% endif %}
{% endfor %}
{% else %}
{% if action == "update" and not desired.admin %}
REVOKE ADMIN OPTION FOR {{ spec.group|ident }} FROM {{ spec.role|ident }};
{% else %}
GRANT {{ spec.group|ident }} TO {{ spec.role|ident }}{% if desired.admin %} WITH ADMIN OPTION{% endif %};
{% endif %}
{% endif %}
