{# Named with --destroy: with what it holds. Otherwise PostgreSQL refuses
   while it holds anything. #}
DROP SCHEMA {{ name|ident }}{% if destroy %} CASCADE{% endif %};
