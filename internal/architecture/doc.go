// Package architecture checks docs/architecture.md against the code: what the document says about the
// packages must be what `go list` says (imports_test.go). It has no code of its own.
package architecture
