{#- The subscription's connection string: every value quoted for libpq
    (conninfo_quote), then the whole string written as one SQL literal. -#}
{%- set parts = ["host=" ~ (spec.publisher.host|conninfo_quote)] -%}
{%- if spec.publisher.port is defined %}{% set parts = parts + ["port=" ~ (spec.publisher.port|string|conninfo_quote)] %}{% endif -%}
{%- set parts = parts + ["dbname=" ~ (spec.publisher.database|conninfo_quote), "user=" ~ (spec.publisher.user|conninfo_quote)] -%}
{%- if spec.publisher.sslMode is defined %}{% set parts = parts + ["sslmode=" ~ (spec.publisher.sslMode|conninfo_quote)] %}{% endif -%}
{%- if spec.publisher.connectTimeout is defined %}{% set parts = parts + ["connect_timeout=" ~ (spec.publisher.connectTimeout|string|conninfo_quote)] %}{% endif -%}
{%- if spec.publisher.applicationName is defined %}{% set parts = parts + ["application_name=" ~ (spec.publisher.applicationName|conninfo_quote)] %}{% endif -%}
{%- if desired.password is defined %}{% set parts = parts + ["password=" ~ (desired.password|conninfo_quote)] %}{% endif -%}
{{ parts|join(" ") }}
