DROP PUBLICATION {{ name|ident }};
