{# Without FORCE: a database with open sessions is not dropped; the error says so. #}
DROP DATABASE {{ name|ident }};
