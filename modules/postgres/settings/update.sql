ALTER SYSTEM SET {{ name|ident_path }} = {{ desired.value }};
