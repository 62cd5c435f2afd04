# Not a *.hcl file, so the directory holds no spec.
mesh "tidb" {}
