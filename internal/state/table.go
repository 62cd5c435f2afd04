package state

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Entry is one address the state records and what `meshctl state list` and `state show` print of it, in
// print order. Each kind lists its own (plan.KindInfo.State); the state holds no secret, and only these
// attributes are printed.
type Entry struct {
	Address string
	Attrs   []Attr
}

// Attr is one printed attribute: a string (left out when empty) or a []string.
type Attr struct {
	Name  string
	Value any
}

// Table is the records of one kind that has no field of its own in State: by address, under Records[Name]
// in the state file. A kind added after the state format was fixed keeps its records in one (see
// docs/architecture.md, "Adding a kind"), so that it touches neither State nor this package.
type Table[T any] struct{ Name string }

// Get returns the record at address.
func (t Table[T]) Get(st *State, address string) (T, bool, error) {
	var v T
	raw, ok := st.Records[t.Name][address]
	if !ok {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("state: %s record %s: %w", t.Name, address, err)
	}
	return v, true, nil
}

// Set records v at address.
func (t Table[T]) Set(st *State, address string, v T) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state: %s record %s: %w", t.Name, address, err)
	}
	if st.Records == nil {
		st.Records = map[string]map[string]json.RawMessage{}
	}
	if st.Records[t.Name] == nil {
		st.Records[t.Name] = map[string]json.RawMessage{}
	}
	st.Records[t.Name][address] = raw
	return nil
}

// Forget drops the record at address; it is a no-op when there is none.
func (t Table[T]) Forget(st *State, address string) {
	delete(st.Records[t.Name], address)
	if len(st.Records[t.Name]) == 0 {
		delete(st.Records, t.Name)
	}
	if len(st.Records) == 0 {
		st.Records = nil
	}
}

// Addresses lists the recorded addresses, sorted.
func (t Table[T]) Addresses(st *State) []string { return slices.Sorted(maps.Keys(st.Records[t.Name])) }

// Upgrade maps the records an older state file kept elsewhere into their place now: old is the file's
// top level by key (keys State no longer knows included). Kinds register theirs (plan.Records.Upgrade)
// and every backend's read runs them, in the order they were registered, after decoding.
type Upgrade func(old map[string]json.RawMessage, st *State) error

var upgrades []namedUpgrade

type namedUpgrade struct {
	name string
	up   Upgrade
}

// RegisterUpgrade adds an upgrade, named for errors. It is called from init functions (plan.Register), so
// the list is not locked.
func RegisterUpgrade(name string, up Upgrade) { upgrades = append(upgrades, namedUpgrade{name, up}) }

// upgrade runs the registered upgrades on a decoded state.
func upgrade(where string, data []byte, st *State) error {
	if len(upgrades) == 0 {
		return nil
	}
	var old map[string]json.RawMessage
	if err := json.Unmarshal(data, &old); err != nil {
		return fmt.Errorf("state file %s is corrupt: %w", where, err)
	}
	for _, u := range upgrades {
		if err := u.up(old, st); err != nil {
			return fmt.Errorf("state file %s: upgrading the %s records: %w", where, u.name, err)
		}
	}
	return nil
}
