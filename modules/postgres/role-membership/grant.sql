{# GRANT sets the options it names; a membership that exists keeps the others. #}
{% if server_version_num >= 160000 %}
GRANT {{ spec.group|ident }} TO {{ spec.role|ident }} WITH ADMIN {% if desired.admin %}TRUE{% else %}FALSE{% endif %}
{%- if desired.inherit is defined %}, INHERIT {% if desired.inherit %}TRUE{% else %}FALSE{% endif %}{% endif %}
{%- if desired.set is defined %}, SET {% if desired.set %}TRUE{% else %}FALSE{% endif %}{% endif %};
{% else %}
{% if action == "update" and not desired.admin %}
REVOKE ADMIN OPTION FOR {{ spec.group|ident }} FROM {{ spec.role|ident }};
{% else %}
GRANT {{ spec.group|ident }} TO {{ spec.role|ident }}{% if desired.admin %} WITH ADMIN OPTION{% endif %};
{% endif %}
{% endif %}
