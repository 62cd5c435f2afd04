package plan

// Action is what a change does. Its value is the symbol the human plan shows in front of the address, so the
// symbol is defined in exactly one place.
type Action string

const (
	// Create makes an object that does not exist. Before is nil, After is the object to create.
	Create Action = "+"
	// Update changes an object meshd owns in place (accept a pending peering, retarget a route, rewrite a
	// Corefile). Before is what was observed, After is what it will be.
	Update Action = "~"
	// Delete removes an object meshd owns. Before is what was observed, After is nil.
	Delete Action = "-"
	// Replace deletes an object meshd owns and creates it again, for a change the API refuses in place (a
	// Secret's type, an immutable Secret's data). Before is what was observed, After the new object.
	Replace Action = "-/+"
	// Adopt takes over an object meshd did not create but that already does what the spec asks (a peering or
	// route made by hand): apply tags it and records it in the state; nothing else changes. Before and After
	// are the same object. For Kubernetes objects (a copy, the runbook's DNS Service and Corefile blocks)
	// After is meshd's version, which apply sets in place.
	Adopt Action = ">"
	// Keep is not a change: an object that is not meshd's is left alone, shown so the user knows why meshd
	// does not create its own. Before and After are the same object.
	Keep Action = "="
)

// words are every form of an action's name meshd prints, kept together so the wording is decided here only.
var words = map[Action]struct{ verb, past, progressive, noun string }{
	Create:  {"create", "created", "creating", "creation"},
	Update:  {"update", "updated in place", "modifying", "modification"},
	Delete:  {"destroy", "destroyed", "destroying", "destruction"},
	Adopt:   {"adopt", "adopted", "adopting", "adoption"},
	Replace: {"replace", "replaced", "replacing", "replacement"},
	Keep:    {"leave alone", "left alone", "leaving alone", "leaving alone"},
}

// Verb is the word used in summaries and logs ("create").
func (a Action) Verb() string { return words[a].verb }

// Past is the form used in plan headers ("will be created").
func (a Action) Past() string { return words[a].past }

// Progressive is the form used while a change runs ("creating...").
func (a Action) Progressive() string { return words[a].progressive }

// Noun is the form used when a change is done ("creation complete").
func (a Action) Noun() string { return words[a].noun }

// IsChange reports whether applying the action touches anything (Keep does not).
func (a Action) IsChange() bool {
	return a == Create || a == Update || a == Delete || a == Adopt || a == Replace
}
