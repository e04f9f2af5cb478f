DROP SUBSCRIPTION {{ name|ident }};
