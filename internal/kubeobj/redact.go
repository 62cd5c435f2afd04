package kubeobj

import (
	"encoding/base64"
	"slices"
	"strings"
)

// redactedError is an error about a sensitive object with every value of the object's data cut out of its
// message, raw and base64: what the API server answers is not ours to vet, and an error is printed and
// logged. Unwrap keeps the original for errors.Is/As (apierrors.IsConflict and the like).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// minRedacted: shorter values are too likely to be ordinary words of a message to be cut out of it (and a
// secret that short is no secret).
const minRedacted = 4

// redact returns err with o's data values removed from its message, if o's kind is sensitive.
func redact(err error, objects ...Object) error {
	if err == nil {
		return nil
	}
	var secrets []string
	for _, o := range objects {
		k, lerr := Lookup(o.Kind)
		if lerr != nil || !k.Sensitive {
			continue
		}
		secrets = append(secrets, dataValues(o)...)
	}
	if len(secrets) == 0 {
		return err
	}
	// Longest first, so that a whole value goes before a line of it.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "<redacted>")
	}
	return &redactedError{msg: msg, err: err}
}

// dataValues are the forms a Secret's data values may take in a message: base64 as in the API, decoded,
// and each line of a decoded value (a message may quote one line of a PEM block).
func dataValues(o Object) []string {
	var out []string
	add := func(s string) {
		if len(s) >= minRedacted {
			out = append(out, s)
		}
	}
	addRaw := func(s string) {
		add(s)
		for _, line := range strings.Split(s, "\n") {
			add(strings.TrimSpace(line))
		}
	}
	switch d := o.Content["data"].(type) {
	case map[string]any:
		for _, v := range d {
			if s, ok := v.(string); ok {
				add(s)
				if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
					addRaw(string(raw))
				}
			}
		}
	case map[string]string:
		for _, s := range d {
			add(s)
			if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
				addRaw(string(raw))
			}
		}
	}
	return out
}
